package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc"
)

// fakeOperator holds a namespace's custom search attributes.
type fakeOperator struct {
	operatorservice.OperatorServiceClient
	attrs  map[string]enumspb.IndexedValueType
	added  map[string]enumspb.IndexedValueType
	addErr error
}

func (f *fakeOperator) ListSearchAttributes(context.Context, *operatorservice.ListSearchAttributesRequest, ...grpc.CallOption) (*operatorservice.ListSearchAttributesResponse, error) {
	return &operatorservice.ListSearchAttributesResponse{CustomAttributes: f.attrs}, nil
}

func (f *fakeOperator) AddSearchAttributes(_ context.Context, in *operatorservice.AddSearchAttributesRequest, _ ...grpc.CallOption) (*operatorservice.AddSearchAttributesResponse, error) {
	f.added = in.GetSearchAttributes()
	return &operatorservice.AddSearchAttributesResponse{}, f.addErr
}

var quiet = slog.New(slog.DiscardHandler)

func TestMissingSearchAttributesAreRegistered(t *testing.T) {
	t.Parallel()
	f := &fakeOperator{attrs: map[string]enumspb.IndexedValueType{"IntegrationName": enumspb.INDEXED_VALUE_TYPE_KEYWORD}}
	require.NoError(t, ensureSearchAttributes(context.Background(), f, "default", true, quiet))
	require.Len(t, f.added, len(api.SearchAttributes())-1)
	require.Equal(t, enumspb.INDEXED_VALUE_TYPE_DATETIME, f.added["AttentionSince"])
	require.NotContains(t, f.added, "IntegrationName")
}

func TestAnotherWorkerRegisteringFirstIsFine(t *testing.T) {
	t.Parallel()
	f := &fakeOperator{addErr: serviceerror.NewAlreadyExists("exists")}
	require.NoError(t, ensureSearchAttributes(context.Background(), f, "default", true, quiet))
}

func TestMissingSearchAttributesNamedWhenNotRegistering(t *testing.T) {
	t.Parallel()
	attrs := api.SearchAttributes()
	delete(attrs, "ExceptionKind")
	delete(attrs, "AttentionSince")
	f := &fakeOperator{attrs: attrs}
	err := ensureSearchAttributes(context.Background(), f, "prod", false, quiet)
	require.EqualError(t, err, "namespace prod lacks search attributes AttentionSince, ExceptionKind: create them with "+
		"`temporal operator search-attribute create --namespace prod --name AttentionSince --type Datetime --name ExceptionKind --type Keyword` "+
		"(or on Temporal Cloud with tcld), or set SIGNALBOX_REGISTER_SEARCH_ATTRIBUTES=true")
	require.Nil(t, f.added)
}

func TestWrongTypeIsReported(t *testing.T) {
	t.Parallel()
	attrs := api.SearchAttributes()
	attrs["AttentionSince"] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	err := ensureSearchAttributes(context.Background(), &fakeOperator{attrs: attrs}, "default", true, quiet)
	require.ErrorContains(t, err, "search attribute AttentionSince exists in namespace default with type Keyword, but signalbox needs Datetime")
}

func TestAllPresentChangesNothing(t *testing.T) {
	t.Parallel()
	f := &fakeOperator{attrs: api.SearchAttributes()}
	require.NoError(t, ensureSearchAttributes(context.Background(), f, "default", false, quiet))
	require.Nil(t, f.added)
}
