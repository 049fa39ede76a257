package program

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/dynamodb"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/efs"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sqs"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Bucket roles.
const (
	BucketRaw     = "raw"     // uploads and OCR results (TALLY_BLOB_URL)
	BucketAssets  = "assets"  // renditions (TALLY_ASSETS_BLOB_URL)
	BucketVectors = "vectors" // vector segments, deltas, manifests (TALLY_VECTOR_BLOB_URL)
)

// Buckets lists the bucket roles in a fixed order.
var Buckets = []string{BucketRaw, BucketAssets, BucketVectors}

// EFS layout: the access point's root and where functions mount it.
const (
	EFSRoot  = "/chroma"
	EFSMount = "/mnt/chroma"
)

type storage struct {
	table   *dynamodb.Table
	buckets map[string]*s3.BucketV2
	queues  map[string]*sqs.Queue // by logical name, DLQs as name+"-dlq"
	efs     *efs.FileSystem
	ap      *efs.AccessPoint
	mounts  []pulumi.Resource // functions that mount EFS wait for these
}

func newStorage(ctx *pulumi.Context, c *Config, n *network) (*storage, error) {
	st := &storage{buckets: map[string]*s3.BucketV2{}, queues: map[string]*sqs.Queue{}}
	if err := st.newTable(ctx, c); err != nil {
		return nil, err
	}
	for _, b := range Buckets {
		if err := st.newBucket(ctx, c, b); err != nil {
			return nil, fmt.Errorf("bucket %s: %w", b, err)
		}
	}
	for _, q := range Queues {
		if err := st.newQueue(ctx, c, q); err != nil {
			return nil, fmt.Errorf("queue %s: %w", q, err)
		}
	}
	if c.EFS {
		if err := st.newEFS(ctx, c, n); err != nil {
			return nil, fmt.Errorf("efs: %w", err)
		}
	}
	return st, nil
}

// newTable makes the single table as items/dynamodb.CreateTable does, plus
// point-in-time recovery.
func (st *storage) newTable(ctx *pulumi.Context, c *Config) error {
	attrs := dynamodb.TableAttributeArray{
		dynamodb.TableAttributeArgs{Name: pulumi.String("PK"), Type: pulumi.String("S")},
		dynamodb.TableAttributeArgs{Name: pulumi.String("SK"), Type: pulumi.String("S")},
	}
	var gsis dynamodb.TableGlobalSecondaryIndexArray
	for i := 1; i <= 4; i++ {
		pk, sk := fmt.Sprintf("GSI%dPK", i), fmt.Sprintf("GSI%dSK", i)
		attrs = append(attrs,
			dynamodb.TableAttributeArgs{Name: pulumi.String(pk), Type: pulumi.String("S")},
			dynamodb.TableAttributeArgs{Name: pulumi.String(sk), Type: pulumi.String("S")})
		gsis = append(gsis, dynamodb.TableGlobalSecondaryIndexArgs{
			Name: pulumi.String(fmt.Sprintf("GSI%d", i)), HashKey: pulumi.String(pk), RangeKey: pulumi.String(sk),
			ProjectionType: pulumi.String("ALL"),
		})
	}
	attrs = append(attrs, dynamodb.TableAttributeArgs{Name: pulumi.String("TYPE"), Type: pulumi.String("S")})
	gsis = append(gsis, dynamodb.TableGlobalSecondaryIndexArgs{
		Name: pulumi.String("GSITYPE"), HashKey: pulumi.String("TYPE"), ProjectionType: pulumi.String("ALL"),
	})
	var err error
	st.table, err = dynamodb.NewTable(ctx, "table", &dynamodb.TableArgs{
		Name:                   pulumi.String(c.TableName),
		BillingMode:            pulumi.String("PAY_PER_REQUEST"),
		HashKey:                pulumi.String("PK"),
		RangeKey:               pulumi.String("SK"),
		Attributes:             attrs,
		GlobalSecondaryIndexes: gsis,
		Ttl:                    dynamodb.TableTtlArgs{AttributeName: pulumi.String("time_to_live"), Enabled: pulumi.Bool(true)},
		StreamEnabled:          pulumi.Bool(true),
		StreamViewType:         pulumi.String("NEW_AND_OLD_IMAGES"),
		PointInTimeRecovery:    dynamodb.TablePointInTimeRecoveryArgs{Enabled: pulumi.Bool(true)},
		Tags:                   tags(c, "items"),
	})
	if err != nil {
		return fmt.Errorf("table: %w", err)
	}
	return nil
}

func (st *storage) newBucket(ctx *pulumi.Context, c *Config, role string) error {
	b, err := s3.NewBucketV2(ctx, "bucket-"+role, &s3.BucketV2Args{
		BucketPrefix: pulumi.String(c.BucketPrefix + role + "-"),
		Tags:         tags(c, role),
	})
	if err != nil {
		return err
	}
	st.buckets[role] = b
	if _, err := s3.NewBucketPublicAccessBlock(ctx, "bucket-"+role+"-public-access", &s3.BucketPublicAccessBlockArgs{
		Bucket:                b.ID(),
		BlockPublicAcls:       pulumi.Bool(true),
		BlockPublicPolicy:     pulumi.Bool(true),
		IgnorePublicAcls:      pulumi.Bool(true),
		RestrictPublicBuckets: pulumi.Bool(true),
	}); err != nil {
		return err
	}
	// SSE-S3: encrypted at rest with no KMS key to grant or pay for.
	if _, err := s3.NewBucketServerSideEncryptionConfigurationV2(ctx, "bucket-"+role+"-encryption", &s3.BucketServerSideEncryptionConfigurationV2Args{
		Bucket: b.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
			ApplyServerSideEncryptionByDefault: s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
				SseAlgorithm: pulumi.String("AES256"),
			},
		}},
	}); err != nil {
		return err
	}
	abort := s3.BucketLifecycleConfigurationV2RuleAbortIncompleteMultipartUploadArgs{DaysAfterInitiation: pulumi.Int(c.AbortMultipartDays)}
	rules := s3.BucketLifecycleConfigurationV2RuleArray{s3.BucketLifecycleConfigurationV2RuleArgs{
		Id:                             pulumi.String("abort-incomplete-multipart-uploads"),
		Status:                         pulumi.String("Enabled"),
		Filter:                         s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String("")},
		AbortIncompleteMultipartUpload: abort,
	}}
	var deps []pulumi.Resource
	if role == BucketVectors {
		// Versioning lets a bad compaction be rolled back; old versions go
		// after noncurrentExpireDays.
		ver, err := s3.NewBucketVersioningV2(ctx, "bucket-vectors-versioning", &s3.BucketVersioningV2Args{
			Bucket:                  b.ID(),
			VersioningConfiguration: s3.BucketVersioningV2VersioningConfigurationArgs{Status: pulumi.String("Enabled")},
		})
		if err != nil {
			return err
		}
		deps = append(deps, ver)
		rules = append(rules, s3.BucketLifecycleConfigurationV2RuleArgs{
			Id:                          pulumi.String("expire-noncurrent-versions"),
			Status:                      pulumi.String("Enabled"),
			Filter:                      s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String("")},
			Expiration:                  s3.BucketLifecycleConfigurationV2RuleExpirationArgs{ExpiredObjectDeleteMarker: pulumi.Bool(true)},
			NoncurrentVersionExpiration: s3.BucketLifecycleConfigurationV2RuleNoncurrentVersionExpirationArgs{NoncurrentDays: pulumi.Int(c.NoncurrentExpireDays)},
		})
		// Compaction deletes merged deltas itself; this only catches what a
		// crashed or abandoned run leaves behind, long after any reader
		// could still need it.
		for _, prefix := range c.DeltaRulePrefixes() {
			rules = append(rules, s3.BucketLifecycleConfigurationV2RuleArgs{
				Id:         pulumi.String("expire-stale-deltas-" + strings.ReplaceAll(strings.TrimSuffix(prefix, "/"), "/", "-")),
				Status:     pulumi.String("Enabled"),
				Filter:     s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String(prefix)},
				Expiration: s3.BucketLifecycleConfigurationV2RuleExpirationArgs{Days: pulumi.Int(c.DeltaExpireDays)},
			})
		}
	}
	if _, err := s3.NewBucketLifecycleConfigurationV2(ctx, "bucket-"+role+"-lifecycle", &s3.BucketLifecycleConfigurationV2Args{
		Bucket: b.ID(),
		Rules:  rules,
	}, pulumi.DependsOn(deps)); err != nil {
		return err
	}
	return nil
}

// newQueue makes a queue and its dead-letter queue under the names Tally
// opens: <prefix><name> and <prefix><name>-dlq.
func (st *storage) newQueue(ctx *pulumi.Context, c *Config, name string) error {
	dlq, err := sqs.NewQueue(ctx, "queue-"+name+DLQSuffix, &sqs.QueueArgs{
		Name:                    pulumi.String(c.NamePrefix + name + DLQSuffix),
		MessageRetentionSeconds: pulumi.Int(dlqRetentionSecond),
		SqsManagedSseEnabled:    pulumi.Bool(true),
		Tags:                    tags(c, name+DLQSuffix),
	})
	if err != nil {
		return err
	}
	redrive := dlq.Arn.ApplyT(func(arn string) (string, error) {
		b, err := json.Marshal(map[string]any{"deadLetterTargetArn": arn, "maxReceiveCount": c.MaxReceiveCount})
		return string(b), err
	}).(pulumi.StringOutput)
	q, err := sqs.NewQueue(ctx, "queue-"+name, &sqs.QueueArgs{
		Name:                     pulumi.String(c.NamePrefix + name),
		VisibilityTimeoutSeconds: pulumi.Int(c.VisibilityTimeout(name)),
		MessageRetentionSeconds:  pulumi.Int(4 * 24 * 3600),
		RedrivePolicy:            redrive,
		SqsManagedSseEnabled:     pulumi.Bool(true),
		Tags:                     tags(c, name),
	})
	if err != nil {
		return err
	}
	st.queues[name], st.queues[name+DLQSuffix] = q, dlq
	return nil
}

// newEFS makes the encrypted file system, one mount target per zone (EFS
// allows no more), and the /chroma access point.
func (st *storage) newEFS(ctx *pulumi.Context, c *Config, n *network) error {
	var err error
	st.efs, err = efs.NewFileSystem(ctx, "efs", &efs.FileSystemArgs{
		Encrypted:      pulumi.Bool(true),
		ThroughputMode: pulumi.String("elastic"),
		Tags:           tags(c, "chroma"),
	})
	if err != nil {
		return err
	}
	for _, role := range c.EFSMountSubnets {
		az := c.Subnet(role).AZ
		mt, err := efs.NewMountTarget(ctx, "efs-mount-"+az, &efs.MountTargetArgs{
			FileSystemId:   st.efs.ID(),
			SubnetId:       n.subnets[role].ID(),
			SecurityGroups: pulumi.StringArray{n.sgEFS.ID()},
		})
		if err != nil {
			return fmt.Errorf("mount target %s: %w", az, err)
		}
		st.mounts = append(st.mounts, mt)
	}
	st.ap, err = efs.NewAccessPoint(ctx, "efs-access-point", &efs.AccessPointArgs{
		FileSystemId: st.efs.ID(),
		PosixUser:    efs.AccessPointPosixUserArgs{Uid: pulumi.Int(1000), Gid: pulumi.Int(1000)},
		RootDirectory: efs.AccessPointRootDirectoryArgs{
			Path: pulumi.String(EFSRoot),
			CreationInfo: efs.AccessPointRootDirectoryCreationInfoArgs{
				OwnerUid: pulumi.Int(1000), OwnerGid: pulumi.Int(1000), Permissions: pulumi.String("0755"),
			},
		},
		Tags: tags(c, "chroma"),
	})
	return err
}

// env is the environment every Tally process on this stack shares. It
// holds no AWS_REGION: Lambda reserves that name and sets it itself.
func (st *storage) env(c *Config) pulumi.StringMap {
	return pulumi.StringMap{
		"TALLY_QUEUE_URL":             pulumi.String("sqs://" + c.NamePrefix),
		"TALLY_OCR_JOBS_QUEUE_URL":    st.queues[QueueOCRJobs].Url,
		"TALLY_OCR_RESULTS_QUEUE_URL": st.queues[QueueOCRResults].Url,
		"TALLY_COMPACTION_QUEUE_URL":  st.queues[QueueCompaction].Url,
		"TALLY_BLOB_URL":              pulumi.Sprintf("s3://%s", st.buckets[BucketRaw].Bucket),
		"TALLY_ASSETS_BLOB_URL":       pulumi.Sprintf("s3://%s", st.buckets[BucketAssets].Bucket),
		"TALLY_VECTOR_BLOB_URL":       pulumi.Sprintf("s3://%s", st.buckets[BucketVectors].Bucket),
		"TALLY_ITEMS_URL":             pulumi.Sprintf("dynamodb://%s", st.table.Name),
		"TALLY_EMBEDDER_URL":          pulumi.String(c.EmbedderURL),
	}
}
