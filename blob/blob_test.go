package blob

import (
	"crypto/md5"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally"
)

func TestValidateKey(t *testing.T) {
	for _, key := range []string{"a", "a/b", "收据/été 2026/🧾.json", ".hidden", "..a", "a..", strings.Repeat("k", MaxKeyBytes)} {
		if err := ValidateKey(key); err != nil {
			t.Errorf("ValidateKey(%.20q) = %v, want nil", key, err)
		}
	}
	for _, key := range []string{"", "../x", "a/../b", "./a", "/abs", "a\x00b", "a\tb", "a\x7fb", "a//b", "a/", "a\\b", "\xff", strings.Repeat("k", MaxKeyBytes+1)} {
		if err := ValidateKey(key); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("ValidateKey(%.20q) = %v, want ErrInvalidArgument", key, err)
		}
	}
}

func TestCheckRange(t *testing.T) {
	for _, tc := range []struct {
		offset, length, size, want int64
		ok                         bool
	}{
		{0, -1, 10, 10, true},
		{2, 3, 10, 3, true},
		{9, 1, 10, 1, true},
		{8, 5, 10, 2, true},
		{5, -1, 10, 5, true},
		{10, 1, 10, 0, false},
		{11, -1, 10, 0, false},
		{0, -1, 0, 0, false},
		{-1, 1, 10, 0, false},
		{0, 0, 10, 0, false},
	} {
		n, err := CheckRange(tc.offset, tc.length, tc.size)
		if tc.ok && (err != nil || n != tc.want) || !tc.ok && !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("CheckRange(%d, %d, %d) = %d, %v; want %d (ok %v)", tc.offset, tc.length, tc.size, n, err, tc.want, tc.ok)
		}
	}
}

func TestToken(t *testing.T) {
	for _, last := range []string{"a", "a/b/", "收据/é", strings.Repeat("z", MaxKeyBytes)} {
		tok := EncodeToken(last)
		if got, err := DecodeToken(tok); err != nil || got != last {
			t.Errorf("DecodeToken(EncodeToken(%.20q)) = %q, %v", last, got, err)
		}
	}
	if got, err := DecodeToken(""); got != "" || err != nil {
		t.Errorf(`DecodeToken("") = %q, %v`, got, err)
	}
	for _, bad := range []string{"abc", "t1.", "t1.***", "t2.YQ"} {
		if _, err := DecodeToken(bad); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("DecodeToken(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestLimitsAndContentType(t *testing.T) {
	for in, want := range map[int]int{0: MaxListLimit, 1: 1, 999: 999, MaxListLimit: MaxListLimit, 5000: MaxListLimit} {
		if got, err := PageLimit(in); err != nil || got != want {
			t.Errorf("PageLimit(%d) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := PageLimit(-1); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("PageLimit(-1) = %v", err)
	}
	for d, ok := range map[time.Duration]bool{time.Second: true, MaxPresignExpiry: true, 0: false, -time.Second: false, MaxPresignExpiry + 1: false} {
		if err := CheckExpiry(d); (err == nil) != ok {
			t.Errorf("CheckExpiry(%v) = %v", d, err)
		}
	}
	for ct, ok := range map[string]bool{"": true, "image/jpeg": true, `text/plain; charset="utf-8"`: true, "a\nb": false, "é": false, strings.Repeat("a", MaxContentTypeBytes+1): false} {
		if err := ValidateContentType(ct); (err == nil) != ok {
			t.Errorf("ValidateContentType(%.20q) = %v", ct, err)
		}
	}
	if ContentTypeOrDefault("") != DefaultContentType || ContentTypeOrDefault("x/y") != "x/y" {
		t.Error("ContentTypeOrDefault")
	}
	sum := md5.Sum(nil)
	if got := ETag(sum[:]); got != `"d41d8cd98f00b204e9800998ecf8427e"` {
		t.Errorf("ETag(md5 of nothing) = %s", got)
	}
}
