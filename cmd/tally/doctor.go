package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/tallyhq/tally/doctor"
	"github.com/tallyhq/tally/doctor/awscheck"
	"github.com/tallyhq/tally/internal/awsenv"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/upload"
	"github.com/tallyhq/tally/vector"
)

// envFunctionPrefix names the deployment's Lambda functions for doctor's
// AWS checks (the infra program names them prefix+role).
const envFunctionPrefix = "TALLY_FUNCTION_PREFIX"

func runDoctor(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	cfg := portFlags(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	functions := fs.String("functions", os.Getenv(envFunctionPrefix), "check the deployed Lambda functions named PREFIX+role (process, compact, upload), their event source mappings, ENIs, logs and EFS (env "+envFunctionPrefix+")")
	stuckAfter := fs.Duration("stuck-after", upload.DefaultStuckAfter, "an OCR job PENDING without progress this long is stuck")
	logWindow := fs.Duration("log-window", time.Hour, "how far back to read the functions' logs for init errors and timeouts")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rep := diagnose(ctx, cfg, *functions, *stuckAfter, *logWindow)
	var err error
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if code := rep.ExitCode(); code != 0 {
		return exitStatus(code)
	}
	return nil
}

// diagnose opens what it can and checks it; what cannot be opened is itself
// a finding, so the report always comes out.
func diagnose(ctx context.Context, cfg *config.Config, functions string, stuckAfter, logWindow time.Duration) doctor.Report {
	var rep doctor.Report
	p, resolved, err := openFlagged(ctx, cfg)
	if err != nil {
		rep.Add(doctor.Check{Name: "ports", Status: doctor.Unknown, Detail: err.Error()})
		return rep
	}
	defer p.Close()
	dc := doctor.Config{Items: p.Items, Blob: p.Blob, StuckAfter: stuckAfter,
		Collections: []string{vector.CollectionLines, vector.CollectionWords}}
	for _, name := range []string{pipeline.QueueOCRJobs, pipeline.QueueOCRResults, pipeline.QueueCompaction} {
		src, err := p.Queue.OpenQueue(ctx, name)
		if err != nil {
			rep.Add(doctor.Check{Name: "queue " + name, Status: doctor.Problem, Detail: err.Error(),
				Fix: "tally serve (embedded: creates the queues), or deploy the infra (AWS)"})
			continue
		}
		dlq, err := p.Queue.OpenQueue(ctx, name+pipeline.DeadLetterSuffix)
		if err != nil {
			rep.Add(doctor.Check{Name: "queue " + name + pipeline.DeadLetterSuffix, Status: doctor.Problem, Detail: err.Error(),
				Fix: "tally serve (embedded: creates the queues), or deploy the infra (AWS)"})
			continue
		}
		dc.Queues = append(dc.Queues, doctor.QueuePair{Source: src, DeadLetter: dlq})
	}
	store, cache, err := openVectors(ctx, resolved, p, slog.New(slog.DiscardHandler))
	if err != nil {
		rep.Add(doctor.Check{Name: "vectors", Status: doctor.Unknown, Detail: err.Error()})
	} else {
		defer cache.Close()
		dc.Vectors, dc.Cache = store, cache
	}
	rep.Add(doctor.Run(ctx, dc).Checks...)
	if functions != "" {
		opts := awsenv.Options{Endpoint: resolved.AWSEndpoint}
		if u, err := config.ParseURL(resolved.QueueURL); err == nil && u.Scheme == "sqs" {
			opts = awsenv.FromQuery(opts, u.Query) // the account and region the queues are in
		}
		ac, err := awsenv.Load(ctx, opts)
		if err != nil {
			rep.Add(doctor.Check{Name: "aws", Status: doctor.Unknown, Detail: err.Error()})
			return rep
		}
		rep.Add(awscheck.Check(ctx, ac, awscheck.Options{FunctionPrefix: functions, LogWindow: logWindow})...)
	}
	return rep
}
