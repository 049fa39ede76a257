package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/tallyhq/tally/watch"
)

func runWatch(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	server := serverFlag(fs)
	scan := fs.Duration("scan", watch.DefaultScan, "how often the whole folder is scanned again (for NFS/SMB without file events, and to retry while the server is down)")
	settle := fs.Duration("settle", watch.DefaultSettle, "how long a file's size and time must stay the same before it is taken")
	logFormat := fs.String("log", "", "log format: text or json (default: text on a terminal, json otherwise)")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want tally watch DIR [-server URL] [-scan INTERVAL]: %w", errUsage)
	}
	if *scan <= 0 || *settle <= 0 {
		return fmt.Errorf("-scan and -settle must be positive: %w", errUsage)
	}
	log := newLogger(*logFormat, os.Stderr)
	return watch.Run(ctx, watchConfig(pos[0], *server, *scan, *settle, log))
}

// watchConfig is the watched folder's configuration, shared by `tally
// watch` and `tally serve -watch`.
func watchConfig(dir, server string, scan, settle time.Duration, log *slog.Logger) watch.Config {
	return watch.Config{Dir: dir, Client: newClient(server), Scan: scan, Settle: settle, Log: log.With("role", "watch")}
}

// watchFlag registers serve's -watch DIR. Its function, called once the
// flags are parsed, checks DIR and returns serve's ready hook, which
// starts the watcher pointed at the server's own address (nil without
// -watch).
func watchFlag(fs *flag.FlagSet) func(ctx context.Context, log *slog.Logger) (func(addr string), error) {
	dir := fs.String("watch", "", "also watch this folder: import images dropped into it, then move them to DIR/.imported/ or DIR/.failed/ (as `tally watch`)")
	return func(ctx context.Context, log *slog.Logger) (func(addr string), error) {
		if *dir == "" {
			return nil, nil
		}
		if info, err := os.Stat(*dir); err != nil || !info.IsDir() {
			return nil, fmt.Errorf("-watch %s: not a folder (%v): %w", *dir, err, errUsage)
		}
		return func(addr string) {
			go func() {
				cfg := watchConfig(*dir, localURL(addr), watch.DefaultScan, watch.DefaultSettle, log)
				if err := watch.Run(ctx, cfg); err != nil {
					log.Error("the watched folder stopped", "dir", *dir, "err", err)
				}
			}()
		}, nil
	}
}
