package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
)

// putMultipart uploads first (one whole part) and then the rest of the
// stream in parts of s.partSize, up to s.concurrency at once, each from its
// own buffer: a Put holds at most s.concurrency parts in memory. Until
// CompleteMultipartUpload succeeds nothing is visible under the key; on any
// failure (the reader's, a part's, the completion's, or ctx's) the upload
// is aborted so that S3 keeps (and bills) no parts.
func (s *Store) putMultipart(ctx context.Context, okey string, first []byte, rest io.Reader, ct string, ifAbsent bool) (blob.Info, error) {
	created, err := s.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(okey),
		ContentType: aws.String(ct),
	})
	if err != nil {
		return blob.Info{}, fmt.Errorf("create multipart upload: %w", s.mapErr(err))
	}
	uploadID := aws.ToString(created.UploadId)

	info, err := s.uploadParts(ctx, okey, uploadID, first, rest, ct, ifAbsent)
	if err != nil {
		if aerr := s.abort(ctx, okey, uploadID); aerr != nil {
			s.log.Error("s3: abort of a failed multipart upload failed; its parts stay until a bucket lifecycle rule removes them",
				"bucket", s.bucket, "key", okey, "upload_id", uploadID, "err", aerr)
			return blob.Info{}, errors.Join(err, aerr)
		}
		return blob.Info{}, err
	}
	return info, nil
}

// abortAttempts bounds the abort-and-check rounds of one failed upload.
const abortAttempts = 3

// abort removes a failed multipart upload and its parts. It runs even when
// ctx is canceled, as that is the usual reason to be here. S3 warns that a
// part upload still in progress during an abort (a canceled request the
// server had already received) may land after it, so the upload is only
// gone once ListParts reports NoSuchUpload; until then, abort again.
func (s *Store) abort(ctx context.Context, okey, uploadID string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	for range abortAttempts {
		_, err := s.client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{
			Bucket:   aws.String(s.bucket),
			Key:      aws.String(okey),
			UploadId: aws.String(uploadID),
		})
		if err != nil && !isNoSuchUpload(err) {
			return fmt.Errorf("abort multipart upload %s: %w", uploadID, s.mapErr(err))
		}
		_, err = s.client.ListParts(ctx, &awss3.ListPartsInput{
			Bucket:   aws.String(s.bucket),
			Key:      aws.String(okey),
			UploadId: aws.String(uploadID),
			MaxParts: aws.Int32(1),
		})
		if isNoSuchUpload(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("check abort of multipart upload %s: %w", uploadID, s.mapErr(err))
		}
	}
	return fmt.Errorf("multipart upload %s is still listed after %d aborts", uploadID, abortAttempts)
}

func isNoSuchUpload(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchUpload"
}

func (s *Store) uploadParts(ctx context.Context, okey, uploadID string, first []byte, rest io.Reader, ct string, ifAbsent bool) (blob.Info, error) {
	var (
		mu       sync.Mutex
		parts    []types.CompletedPart
		firstErr error
		wg       sync.WaitGroup
	)
	// A failure stops new parts; parts in flight finish (rather than being
	// canceled half-sent), so that the abort that follows races nothing.
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	// free hands buffers back from finished parts; at most s.concurrency
	// exist, the first being the one Put read to choose multipart.
	free := make(chan []byte, s.concurrency)
	allocated := 1
	upload := func(num int32, buf []byte, n int) {
		defer func() { free <- buf }()
		data := buf[:n]
		sum := md5.Sum(data)
		out, err := s.client.UploadPart(ctx, &awss3.UploadPartInput{
			Bucket:        aws.String(s.bucket),
			Key:           aws.String(okey),
			UploadId:      aws.String(uploadID),
			PartNumber:    aws.Int32(num),
			Body:          bytes.NewReader(data),
			ContentLength: aws.Int64(int64(n)),
			ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		})
		if err != nil {
			fail(fmt.Errorf("upload part %d: %w", num, s.mapErr(err)))
			return
		}
		mu.Lock()
		parts = append(parts, types.CompletedPart{
			PartNumber:     aws.Int32(num),
			ETag:           out.ETag,
			ChecksumCRC32:  out.ChecksumCRC32,
			ChecksumCRC32C: out.ChecksumCRC32C,
			ChecksumSHA1:   out.ChecksumSHA1,
			ChecksumSHA256: out.ChecksumSHA256,
		})
		mu.Unlock()
	}

	size := int64(len(first))
	buf, n := first, len(first)
	for num := int32(1); ; num++ {
		wg.Add(1)
		go func(buf []byte, n int) { defer wg.Done(); upload(num, buf, n) }(buf, n)
		if n < int(s.partSize) {
			break // a short part is the last
		}
		// Wait for a free buffer (or make one, up to the bound).
		buf = nil
		select {
		case buf = <-free:
		default:
			if allocated < s.concurrency {
				allocated++
				buf = make([]byte, s.partSize)
			} else {
				select {
				case buf = <-free:
				case <-ctx.Done():
				}
			}
		}
		mu.Lock()
		failed := firstErr != nil || ctx.Err() != nil
		mu.Unlock()
		if buf == nil || failed {
			break // ctx ended, or a part failed (its error is recorded)
		}
		buf = buf[:cap(buf)]
		if int64(len(buf)) > s.partSize {
			buf = buf[:s.partSize]
		}
		var err error
		n, err = io.ReadFull(rest, buf)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			if cerr := ctx.Err(); cerr != nil {
				// A body tied to the canceled request fails with it.
				err = fmt.Errorf("%w (%w)", cerr, err)
			}
			fail(fmt.Errorf("read body: %w", err))
			break
		}
		if n == 0 {
			break
		}
		size += int64(n)
		if num+1 > MaxParts {
			fail(fmt.Errorf("object over %d parts of %d bytes: %w", MaxParts, s.partSize, tally.ErrInvalidArgument))
			break
		}
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return blob.Info{}, firstErr
	}

	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	in := &awss3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(okey),
		UploadId:        aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	var optFns []func(*awss3.Options)
	if ifAbsent {
		in.IfNoneMatch = aws.String("*")
		optFns = append(optFns, conditional)
	}
	out, err := s.client.CompleteMultipartUpload(ctx, in, optFns...)
	if err != nil {
		return blob.Info{}, fmt.Errorf("complete multipart upload: %w", s.mapPutErr(err, ifAbsent))
	}
	return blob.Info{
		Size:        size,
		ETag:        aws.ToString(out.ETag),
		ContentType: ct,
		Modified:    serverTime(out.ResultMetadata),
	}, nil
}
