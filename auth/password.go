package auth

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// params are argon2id's cost settings, stored with each hash so that they
// can be raised later without breaking old passwords.
type params struct {
	memoryKiB uint32
	time      uint32
	threads   uint8
}

// defaultParams follow OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane):
// tens of milliseconds per login (BENCHMARKS.md, "Accounts"), and within a
// 128 MB Lambda.
var (
	defaultParams = params{memoryKiB: 19 * 1024, time: 2, threads: 1}
	testParams    = params{memoryKiB: 64, time: 1, threads: 1}
)

const (
	saltLen = 16
	keyLen  = 32
)

// dummyHash is compared against when the user does not exist, so that a
// login for an unknown name costs the same as a wrong password.
// It is made on first use, not at start-up (a Lambda cold start).
var dummyHash = sync.OnceValue(func() string {
	h, _ := defaultParams.hash("no such user, no such password")
	return h
})

// hash returns the PHC string $argon2id$v=19$m=…,t=…,p=…$salt$key.
func (p params) hash(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.time, p.memoryKiB, p.threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memoryKiB, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// compare checks password against a stored PHC string with the string's own
// parameters. A malformed string never matches.
func (params) compare(stored, password string) bool {
	parts := strings.Split(stored, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var p params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memoryKiB, &p.time, &p.threads); err != nil ||
		p.memoryKiB == 0 || p.memoryKiB > 1<<20 || p.time == 0 || p.time > 16 || p.threads == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 || len(key) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, p.time, p.memoryKiB, p.threads, uint32(len(key)))
	return equal(string(got), string(key))
}
