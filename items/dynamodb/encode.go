package dynamodb

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tallyhq/tally/items"
)

// encodeValue converts a canonical value (items.Normalize's form) to an
// AttributeValue. Numbers travel as their exact decimal text, so nothing is
// lost to float64 on the way.
func encodeValue(v any) (types.AttributeValue, error) {
	switch x := v.(type) {
	case nil:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case bool:
		return &types.AttributeValueMemberBOOL{Value: x}, nil
	case string:
		return &types.AttributeValueMemberS{Value: x}, nil
	case []byte:
		return &types.AttributeValueMemberB{Value: x}, nil
	case items.Number:
		return &types.AttributeValueMemberN{Value: string(x)}, nil
	case []any:
		l := make([]types.AttributeValue, len(x))
		for i, e := range x {
			av, err := encodeValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			l[i] = av
		}
		return &types.AttributeValueMemberL{Value: l}, nil
	case map[string]any:
		m, err := encodeMap(x)
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberM{Value: m}, nil
	case items.Item:
		return encodeValue(map[string]any(x))
	}
	return nil, fmt.Errorf("value of type %T is not canonical", v)
}

func encodeMap(m map[string]any) (map[string]types.AttributeValue, error) {
	out := make(map[string]types.AttributeValue, len(m))
	for k, e := range m {
		av, err := encodeValue(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = av
	}
	return out, nil
}

// encodeItem converts a canonical item (from items.PrepareItem).
func encodeItem(it items.Item) (map[string]types.AttributeValue, error) {
	return encodeMap(it)
}

// encodePlaceholders normalizes and converts expression attribute values.
func encodePlaceholders(values map[string]any) (map[string]types.AttributeValue, error) {
	out := make(map[string]types.AttributeValue, len(values))
	for k, v := range values {
		nv, err := items.Normalize(v)
		if err != nil {
			return nil, fmt.Errorf("value placeholder %s: %w", k, err)
		}
		if out[k], err = encodeValue(nv); err != nil {
			return nil, fmt.Errorf("value placeholder %s: %w", k, err)
		}
	}
	return out, nil
}

func encodeKey(k items.Key) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		items.AttrPK: &types.AttributeValueMemberS{Value: k.PK},
		items.AttrSK: &types.AttributeValueMemberS{Value: k.SK},
	}
}

// decodeValue converts an AttributeValue to the canonical form (numbers as
// items.Number). Tally writes no sets, but a table shared with the old
// system may hold them: they come back as lists.
func decodeValue(av types.AttributeValue) (any, error) {
	switch x := av.(type) {
	case *types.AttributeValueMemberNULL:
		return nil, nil
	case *types.AttributeValueMemberBOOL:
		return x.Value, nil
	case *types.AttributeValueMemberS:
		return x.Value, nil
	case *types.AttributeValueMemberB:
		if x.Value == nil {
			return []byte{}, nil
		}
		return x.Value, nil
	case *types.AttributeValueMemberN:
		return items.ParseNumber(x.Value)
	case *types.AttributeValueMemberL:
		out := make([]any, len(x.Value))
		for i, e := range x.Value {
			v, err := decodeValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = v
		}
		return out, nil
	case *types.AttributeValueMemberM:
		return decodeMap(x.Value)
	case *types.AttributeValueMemberSS:
		out := make([]any, len(x.Value))
		for i, s := range x.Value {
			out[i] = s
		}
		return out, nil
	case *types.AttributeValueMemberNS:
		out := make([]any, len(x.Value))
		for i, s := range x.Value {
			n, err := items.ParseNumber(s)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case *types.AttributeValueMemberBS:
		out := make([]any, len(x.Value))
		for i, b := range x.Value {
			out[i] = b
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported attribute value %T", av)
}

func decodeMap(m map[string]types.AttributeValue) (map[string]any, error) {
	out := make(map[string]any, len(m))
	for k, av := range m {
		v, err := decodeValue(av)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// decodeItem converts a stored item to the canonical form (not yet
// items.OutputItem'd, so TTL checks see exact numbers).
func decodeItem(m map[string]types.AttributeValue) (items.Item, error) {
	out, err := decodeMap(m)
	if err != nil {
		return nil, fmt.Errorf("decode item: %w", err)
	}
	return items.Item(out), nil
}

// freshName returns base, or base with a numeric suffix, that is not a key
// of taken: placeholders Tally adds must not clash with the caller's.
func freshName[V any](base string, taken map[string]V) string {
	name := base
	for i := 1; ; i++ {
		if _, ok := taken[name]; !ok {
			return name
		}
		name = fmt.Sprintf("%s_%d", strings.TrimRight(base, "_"), i)
	}
}
