module github.com/tallyhq/tally/infra

go 1.26
