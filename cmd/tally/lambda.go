package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/internal/lambdahost"
)

// lambdaRoles are the handlers the one binary serves on AWS Lambda.
var lambdaRoles = []string{"process", "compact", "ocr", "upload"}

// inLambda reports whether this process is a Lambda function's runtime.
func inLambda() bool { return os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" }

// lambdaRole picks the handler: TALLY_ROLE, else the function's configured
// handler name (_HANDLER, e.g. "process"), which is what a provided.al2023
// function passes to bootstrap.
func lambdaRole(cfg config.Config) (string, error) {
	role := cfg.Role
	if role == "" {
		role = strings.TrimPrefix(filepath.Base(os.Getenv("_HANDLER")), "tally.")
	}
	for _, r := range lambdaRoles {
		if r == role {
			return r, nil
		}
	}
	return "", fmt.Errorf("lambda role %q: set %s (or the function's handler) to one of %s: %w",
		role, config.EnvRole, strings.Join(lambdaRoles, ", "), tally.ErrInvalidArgument)
}

// runLambda serves one role's handler to the Lambda runtime until the
// runtime stops the process. Everything is opened once, at init, outside
// the handler: a cold start pays for it once and fails fast with one clear
// error (credentials, region, a missing table or queue).
func runLambda(ctx context.Context) error {
	cfg := config.FromEnv()
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(os.TempDir(), "tally-data") // Lambda's only writable place
	}
	resolved, err := cfg.Resolve()
	if err != nil {
		return err
	}
	log := newLogger("json", os.Stderr)
	role, err := lambdaRole(resolved)
	if err != nil {
		return err
	}
	h, closeEnv, err := lambdaHandler(ctx, resolved, role, log)
	if err != nil {
		return err
	}
	defer closeEnv()
	log.Info("lambda handler ready", "role", role, "version", tally.Version)
	lambda.StartWithOptions(h, lambda.WithContext(ctx))
	return nil
}

// lambdaHandler opens the environment and returns the role's handler as
// aws-lambda-go's Handler (what the runtime invokes with the raw event
// JSON) and a function that closes what was opened.
func lambdaHandler(ctx context.Context, cfg config.Config, role string, log *slog.Logger) (lambda.Handler, func() error, error) {
	e, err := openEnv(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	var fn any
	switch role {
	case "upload":
		mux, err := apiHandler(e, true) // behind API Gateway anyone may call: accounts required
		if err != nil {
			e.Close()
			return nil, nil, err
		}
		fn = lambdahost.HTTP(mux)
	default:
		st, err := e.worker(role)
		if err != nil {
			e.Close()
			return nil, nil, err
		}
		fn = lambdahost.SQS(role, st.Handle, log.With("role", role))
	}
	return lambda.NewHandler(fn), e.Close, nil
}
