package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
)

// createWait bounds how long CreateTable waits for a new table to become
// ACTIVE (AWS takes seconds to a few minutes; moto is immediate).
const createWait = 10 * time.Minute

// CreateTable creates the table the way the old system had it, so tests,
// local set-ups and the infra program agree: PK/SK strings (HASH/RANGE),
// one global secondary index per index (string keys, projection ALL; an
// index without SK has only a HASH key), on-demand billing, a stream of new
// and old images, and TTL on time_to_live. It waits until the table is
// ACTIVE. It is idempotent: an existing table is left as it is, except that
// TTL is enabled on it if it is not.
func CreateTable(ctx context.Context, cfg aws.Config, name string, indexes []items.Index) error {
	if name == "" {
		return fmt.Errorf("items/dynamodb: create table: no name: %w", tally.ErrInvalidArgument)
	}
	if err := checkIndexes(indexes); err != nil {
		return fmt.Errorf("items/dynamodb: create table %s: %w", name, err)
	}
	client := dynamodb.NewFromConfig(cfg)
	str := types.ScalarAttributeTypeS
	defined := map[string]bool{items.AttrPK: true, items.AttrSK: true}
	attrs := []types.AttributeDefinition{
		{AttributeName: aws.String(items.AttrPK), AttributeType: str},
		{AttributeName: aws.String(items.AttrSK), AttributeType: str},
	}
	define := func(a string) {
		if !defined[a] {
			defined[a] = true
			attrs = append(attrs, types.AttributeDefinition{AttributeName: aws.String(a), AttributeType: str})
		}
	}
	var gsis []types.GlobalSecondaryIndex
	for _, ix := range indexes {
		define(ix.PK)
		ks := []types.KeySchemaElement{{AttributeName: aws.String(ix.PK), KeyType: types.KeyTypeHash}}
		if ix.SK != "" {
			define(ix.SK)
			ks = append(ks, types.KeySchemaElement{AttributeName: aws.String(ix.SK), KeyType: types.KeyTypeRange})
		}
		gsis = append(gsis, types.GlobalSecondaryIndex{
			IndexName:  aws.String(ix.Name),
			KeySchema:  ks,
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		})
	}
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: attrs,
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(items.AttrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(items.AttrSK), KeyType: types.KeyTypeRange},
		},
		BillingMode:            types.BillingModePayPerRequest,
		GlobalSecondaryIndexes: gsis,
		StreamSpecification: &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewTypeNewAndOldImages,
		},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("items/dynamodb: create table %s: %w", name, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Second, 15*time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, createWait); err != nil {
		return fmt.Errorf("items/dynamodb: wait for table %s to be active: %w", name, err)
	}
	return enableTTL(ctx, client, name)
}

// enableTTL turns TTL on for time_to_live unless it already is.
func enableTTL(ctx context.Context, client *dynamodb.Client, name string) error {
	d, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("items/dynamodb: describe TTL of %s: %w", name, err)
	}
	if desc := d.TimeToLiveDescription; desc != nil {
		switch desc.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if aws.ToString(desc.AttributeName) == items.AttrTTL {
				return nil
			}
			return fmt.Errorf("items/dynamodb: table %s has TTL on %q, not %q: %w",
				name, aws.ToString(desc.AttributeName), items.AttrTTL, tally.ErrInvalidArgument)
		}
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(items.AttrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	var api smithy.APIError
	if errors.As(err, &api) && strings.Contains(strings.ToLower(api.ErrorMessage()), "already enabled") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("items/dynamodb: enable TTL on %s.%s: %w", name, items.AttrTTL, err)
	}
	return nil
}

// Check describes the table so that a missing table (or index) is one
// clear error at start-up, wrapping tally.ErrNotFound and naming it,
// instead of a failure on the first request. A table whose key is not
// PK/SK is tally.ErrInvalidArgument.
func (t *Table) Check(ctx context.Context) error {
	out, err := t.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &t.name})
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return fmt.Errorf("dynamodb table %q does not exist (create it with the infra program or items/dynamodb.CreateTable): %w", t.name, tally.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("dynamodb table %q: describe: %w", t.name, err)
	}
	desc := out.Table
	for _, ks := range desc.KeySchema {
		want := items.AttrPK
		if ks.KeyType == types.KeyTypeRange {
			want = items.AttrSK
		}
		if aws.ToString(ks.AttributeName) != want {
			return fmt.Errorf("dynamodb table %q: key attribute %s is %q, want %q: %w",
				t.name, ks.KeyType, aws.ToString(ks.AttributeName), want, tally.ErrInvalidArgument)
		}
	}
	have := map[string]bool{}
	for _, g := range desc.GlobalSecondaryIndexes {
		have[aws.ToString(g.IndexName)] = true
	}
	for _, ix := range t.indexes {
		if !have[ix.Name] {
			return fmt.Errorf("dynamodb table %q has no index %s: %w", t.name, ix.Name, tally.ErrNotFound)
		}
	}
	return nil
}
