package ocrjob_test

import (
	"errors"
	"testing"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/ocrjob"
)

var fuzzMessageSeeds = []string{
	`{"job_id":"0b6a4c1e-7c2f-4d0e-9a51-3f0c2b9d8e11","image_id":"5f1e2d3c-4b5a-4987-8a6b-1c2d3e4f5a6b"}`,
	`{"image_id":"i","job_id":"j","s3_key":"ocr/i/j.json","s3_bucket":"local","receipt_count":2}`,
	`{"image_id":"i","job_id":"j","s3_key":"k","receipt_count":-1}`,
	`{"image_id":"i","job_id":"j","s3_key":"","receipt_count":0}`,
	`{"image_id":"i","job_id":"j","receipt_count":1.5}`,
	`{"job_id":"a","image_id":"b#c"}`, `{"job_id":"..","image_id":"b"}`, `{"job_id":"a/b","image_id":"b"}`,
	`{"job_id":"a\u0000","image_id":"b"}`, `{"job_id":"a","image_id":"\xff"}`, `{"JOB_ID":"a","Image_Id":"b"}`,
	``, `{}`, `{"job_id":"a"}`, `[1]`, `null`, `{"job_id":"a","image_id":"b"} {}`,
}

// FuzzDecodeJobMessage: an ocr-jobs body either decodes to ids that pass
// ValidateID and survive Encode → Decode unchanged, or is
// tally.ErrInvalidArgument (never a panic).
func FuzzDecodeJobMessage(f *testing.F) {
	for _, s := range fuzzMessageSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		m, err := ocrjob.DecodeJobMessage(body)
		if err != nil {
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Fatalf("DecodeJobMessage(%q) = %v, want tally.ErrInvalidArgument", body, err)
			}
			return
		}
		if ocrjob.ValidateID("image_id", m.ImageID) != nil || ocrjob.ValidateID("job_id", m.JobID) != nil {
			t.Fatalf("accepted ids that do not validate: %+v", m)
		}
		m2, err := ocrjob.DecodeJobMessage(ocrjob.Encode(m))
		if err != nil || m2 != m {
			t.Fatalf("round trip of %+v = %+v, %v", m, m2, err)
		}
	})
}

// FuzzDecodeResultMessage: an ocr-results body either decodes to valid
// ids, an s3_key and a receipt count ≥ 0 that survive Encode → Decode
// unchanged, or is tally.ErrInvalidArgument.
func FuzzDecodeResultMessage(f *testing.F) {
	for _, s := range fuzzMessageSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		m, err := ocrjob.DecodeResultMessage(body)
		if err != nil {
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Fatalf("DecodeResultMessage(%q) = %v, want tally.ErrInvalidArgument", body, err)
			}
			return
		}
		if ocrjob.ValidateID("image_id", m.ImageID) != nil || ocrjob.ValidateID("job_id", m.JobID) != nil ||
			m.S3Key == "" || m.ReceiptCount < 0 {
			t.Fatalf("accepted a bad message: %+v", m)
		}
		m2, err := ocrjob.DecodeResultMessage(ocrjob.Encode(m))
		if err != nil || m2 != m {
			t.Fatalf("round trip of %+v = %+v, %v", m, m2, err)
		}
	})
}
