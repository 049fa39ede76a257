package s3_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/blob/s3"
	"github.com/tallyhq/tally/internal/awstest"
)

// BenchmarkPutGet writes and reads back one object per iteration against
// moto_server with the default options: 1 MiB is one PutObject, 32 MiB
// two 16 MiB parts. MB/s counts the bytes written (each also read once).
// moto keeps objects in Python memory, so this measures the adapter plus
// the emulator, not S3.
func BenchmarkPutGet(b *testing.B) {
	srv := awstest.Shared(b)
	cfg := srv.Config(b)
	st := newStore(b, cfg, s3.Options{Bucket: newBucket(b, cfg)})
	for _, size := range []int{1 << 20, 32 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			data := randBytes(uint64(size), size)
			key := fmt.Sprintf("bench/%d", size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.Put(b.Context(), key, onlyReader{bytes.NewReader(data)}, blob.PutOptions{}); err != nil {
					b.Fatal(err)
				}
				rc, _, err := st.Get(b.Context(), key)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, rc)
				rc.Close()
				if err != nil || n != int64(size) {
					b.Fatalf("read %d bytes, %v", n, err)
				}
			}
		})
	}
}
