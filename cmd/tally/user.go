package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/auth"
	"github.com/tallyhq/tally/importer"
	"github.com/tallyhq/tally/ownership"
)

// envToken is the API token the CLI's server clients send.
const envToken = "TALLY_TOKEN"

// newClient is a client of a running server, sending $TALLY_TOKEN when set.
func newClient(server string) *importer.Client {
	c := importer.New(server)
	c.Token = os.Getenv(envToken)
	return c
}

// stdin is where `tally user` reads passwords; tests replace it.
var stdin io.Reader = os.Stdin

func runUser(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("user", flag.ContinueOnError)
	cfg := portFlags(fs)
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || (pos[0] != "list" && len(pos) != 2) || (pos[0] == "list" && len(pos) != 1) {
		return fmt.Errorf("want tally user add NAME | passwd NAME | adopt NAME | list: %w", errUsage)
	}
	p, _, err := openFlagged(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	svc := auth.New(p.Items, auth.Options{})
	switch pos[0] {
	case "list":
		users, err := svc.Users(ctx)
		for _, u := range users {
			fmt.Fprintln(stdout, u)
		}
		return err
	case "adopt":
		if users, err := svc.Users(ctx); err != nil {
			return err
		} else if !slices.Contains(users, pos[1]) {
			return fmt.Errorf("no user %q (tally user list): %w", pos[1], errUsage)
		}
		rep, err := ownership.Adopt(ctx, p.Items, pos[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s now owns %d images from before accounts (%d jobs, %d summaries, %d sha256 claims); %d already had an owner\n",
			pos[1], rep.Images, rep.Jobs, rep.Summaries, rep.Claims, rep.Skipped)
		return nil
	case "add", "passwd":
		pw, generated, err := readPassword()
		if err != nil {
			return err
		}
		if pos[0] == "add" {
			err = svc.AddUser(ctx, pos[1], pw)
		} else {
			err = svc.SetPassword(ctx, pos[1], pw)
		}
		if errors.Is(err, tally.ErrInvalidArgument) {
			return fmt.Errorf("%v: %w", err, errUsage)
		}
		if err != nil {
			return err
		}
		if generated {
			fmt.Fprintf(stdout, "user %s, password (shown once; change it with `tally user passwd %s`):\n%s\n", pos[1], pos[1], pw)
		} else {
			fmt.Fprintf(stdout, "user %s: password set\n", pos[1])
		}
		return nil
	}
	return fmt.Errorf("unknown user command %q (want add, passwd, adopt or list): %w", pos[0], errUsage)
}

// readPassword takes the first line of stdin when it is not a terminal (a
// pipe or a file), else makes a random password to print once.
func readPassword() (pw string, generated bool, err error) {
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return rand.Text(), true, nil
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return rand.Text(), true, nil
	}
	return line, false, nil
}

func runToken(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	cfg := portFlags(fs)
	user := fs.String("user", "", "whose token (default: the only user)")
	scope := fs.String("scope", "write", "what the token may do: read or write")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || (pos[0] == "list") != (len(pos) == 1) {
		return fmt.Errorf("want tally token create NAME | revoke NAME | list [-user U] [-scope read|write]: %w", errUsage)
	}
	sc, err := auth.ParseScope(*scope)
	if err != nil {
		return fmt.Errorf("%v: %w", err, errUsage)
	}
	p, _, err := openFlagged(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	svc := auth.New(p.Items, auth.Options{})
	if *user == "" {
		users, err := svc.Users(ctx)
		if err != nil {
			return err
		}
		if len(users) != 1 {
			return fmt.Errorf("%d users: say whose token with -user: %w", len(users), errUsage)
		}
		*user = users[0]
	}
	switch pos[0] {
	case "list":
		list, err := svc.Tokens(ctx, *user)
		for _, t := range list {
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", t.Name, t.Scope, t.CreatedAt.Format("2006-01-02 15:04"))
		}
		return err
	case "create":
		secret, err := svc.CreateToken(ctx, *user, pos[1], sc)
		if errors.Is(err, tally.ErrInvalidArgument) {
			return fmt.Errorf("%v: %w", err, errUsage)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %s for %s (%s), shown once; send it as Authorization: Bearer, or set %s:\n%s\n", pos[1], *user, sc, envToken, secret)
		return nil
	case "revoke":
		if err := svc.RevokeToken(ctx, *user, pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %s of %s revoked\n", pos[1], *user)
		return nil
	}
	return fmt.Errorf("unknown token command %q (want create, revoke or list): %w", pos[0], errUsage)
}
