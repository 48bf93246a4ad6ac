package codec

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// newKey is a fresh base64 AES-256 key, as `openssl rand -base64 32` makes.
func newKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func mustParse(t testing.TB, spec string) *Codec {
	t.Helper()
	c, err := Parse(spec)
	require.NoError(t, err)
	return c
}

type lead struct {
	Email, FirstName string
}

func leadPayloads(t *testing.T) []*commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayloads(lead{Email: "ada@example.com", FirstName: "Ada"}, "second")
	require.NoError(t, err)
	return p.Payloads
}

func TestEncodeHidesThePayloadAndDecodeRestoresIt(t *testing.T) {
	c := mustParse(t, "k1="+newKey(t))
	plain := leadPayloads(t)
	enc, err := c.Encode(plain)
	require.NoError(t, err)
	require.Len(t, enc, 2)
	for _, p := range enc {
		require.Equal(t, Encoding, string(p.Metadata[converter.MetadataEncoding]))
		require.Equal(t, "k1", string(p.Metadata[MetadataKeyID]))
		require.NotContains(t, string(p.Data), "ada@example.com")
		require.NotContains(t, string(p.Data), "json/plain", "the original metadata is inside the ciphertext")
	}
	again, err := c.Encode(plain)
	require.NoError(t, err)
	require.NotEqual(t, enc[0].Data, again[0].Data, "a fresh nonce per payload")

	dec, err := c.Decode(enc)
	require.NoError(t, err)
	for i := range plain {
		require.True(t, proto.Equal(plain[i], dec[i]), "payload %d", i)
	}
}

func TestDataConverterRoundTripsValues(t *testing.T) {
	dc := mustParse(t, "k1="+newKey(t)).DataConverter()
	p, err := dc.ToPayloads(lead{Email: "ada@example.com", FirstName: "Ada"})
	require.NoError(t, err)
	raw, err := proto.Marshal(p)
	require.NoError(t, err)
	require.False(t, bytes.Contains(raw, []byte("ada@example.com")))
	var got lead
	require.NoError(t, dc.FromPayloads(p, &got))
	require.Equal(t, "ada@example.com", got.Email)
}

// Keys rotate in two steps: the new key is added after the current one
// everywhere, then put first. Every process reads what every other writes
// at each step.
func TestRotation(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	before := mustParse(t, "k1="+k1)
	added := mustParse(t, "k1="+k1+";k2="+k2)
	rotated := mustParse(t, "k2="+k2+";k1="+k1)
	after := mustParse(t, "k2="+k2)

	old, err := before.Encode(leadPayloads(t))
	require.NoError(t, err)
	fromAdded, err := added.Encode(leadPayloads(t))
	require.NoError(t, err)
	require.Equal(t, "k1", string(fromAdded[0].Metadata[MetadataKeyID]), "a key added last decrypts only")
	fromRotated, err := rotated.Encode(leadPayloads(t))
	require.NoError(t, err)
	require.Equal(t, "k2", string(fromRotated[0].Metadata[MetadataKeyID]), "the first key encrypts")

	for name, c := range map[string]*Codec{"added": added, "rotated": rotated} {
		for _, batch := range [][]*commonpb.Payload{old, fromAdded, fromRotated} {
			_, err := c.Decode(batch)
			require.NoError(t, err, name)
		}
	}
	_, err = after.Decode(fromRotated)
	require.NoError(t, err)
	require.Equal(t, []string{"k2", "k1"}, rotated.KeyIDs())

	// A key dropped too early: what it encrypted no longer decrypts, and
	// the error says which key is missing.
	_, err = after.Decode(old)
	require.ErrorContains(t, err, `key ID "k1"`)
	require.ErrorContains(t, err, "SIGNALBOX_PAYLOAD_KEYS does not hold (it holds k2)")
}

func TestUnknownKeyFailsTheWorkflowTaskNotTheItem(t *testing.T) {
	enc, err := mustParse(t, "k9="+newKey(t)).Encode(leadPayloads(t))
	require.NoError(t, err)

	_, err = mustParse(t, "k1="+newKey(t)).Decode(enc)
	require.ErrorContains(t, err, `a payload is encrypted with key ID "k9", which SIGNALBOX_PAYLOAD_KEYS does not hold (it holds k1): add that key`)
	var taskFailure *converter.WorkflowTaskFailureError
	require.True(t, errors.As(err, &taskFailure), "a missing key is retried once deployed, not a failed item: %T", err)

	noKeys := mustParse(t, "")
	require.False(t, noKeys.Encrypts())
	_, err = noKeys.Decode(enc)
	require.ErrorContains(t, err, `a payload is encrypted with key ID "k9" but SIGNALBOX_PAYLOAD_KEYS is not set`)
	require.Contains(t, noKeys.DataConverter().ToString(enc[0]), `key ID "k9"`)
}

func TestTamperedCiphertextIsRefused(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	c := mustParse(t, "k1="+k1+";k2="+k2)
	encrypt := func() *commonpb.Payload {
		enc, err := c.Encode(leadPayloads(t)[:1])
		require.NoError(t, err)
		return enc[0]
	}
	flipped := encrypt()
	flipped.Data[len(flipped.Data)-5] ^= 1
	relabelled := encrypt()
	relabelled.Metadata[MetadataKeyID] = []byte("k2")
	cut := encrypt()
	cut.Data = cut.Data[:10]
	otherKeySameID := encrypt()

	for name, tc := range map[string]struct {
		p     *commonpb.Payload
		codec *Codec
		want  string
	}{
		"a flipped bit":              {flipped, c, `key ID "k1" does not decrypt: it was altered`},
		"relabelled with another ID": {relabelled, c, `key ID "k2" does not decrypt`},
		"cut short":                  {cut, c, `key ID "k1" is 10 bytes, too short`},
		"another key under its ID":   {otherKeySameID, mustParse(t, "k1="+k2), `key ID "k1" does not decrypt`},
	} {
		_, err := tc.codec.Decode([]*commonpb.Payload{tc.p})
		require.ErrorContains(t, err, tc.want, name)
	}
}

func TestPlainPayloadsPassThrough(t *testing.T) {
	// Items started before encryption was turned on keep plain histories.
	plain := leadPayloads(t)
	dec, err := mustParse(t, "k1="+newKey(t)).Decode(plain)
	require.NoError(t, err)
	require.True(t, proto.Equal(plain[0], dec[0]))

	enc, err := mustParse(t, "").Encode(plain)
	require.NoError(t, err)
	require.True(t, proto.Equal(plain[0], enc[0]), "no keys, no encryption")
}

func TestParseErrorsNameTheEntryNeverTheKey(t *testing.T) {
	good := newKey(t)
	short := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	// A key alone that ends in "=" and holds no '+' or '/' reads as
	// ID "<the key>" with an empty key: it must not be printed as an ID.
	alnum := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for spec, want := range map[string]string{
		good:                            "entry 1 is not ID=<base64 key>",
		alnum:                           "entry 1 is not ID=<base64 key>",
		"k1=":                           "entry 1 is not ID=<base64 key>",
		"k1=" + good + ";" + good:       "entry 2 is not ID=<base64 key>",
		"=" + good:                      "entry 1 is not ID=<base64 key>",
		"k 1=" + good:                   "entry 1 is not ID=<base64 key>",
		"k1=" + good + ";k1=" + good:    `entry 2 (key ID "k1"): the ID is given twice`,
		"k1=" + short:                   `entry 1 (key ID "k1"): the key is 16 bytes; AES-256 needs 32: make one with ` + "`openssl rand -base64 32`",
		"k1=" + good + ";k2=not*base64": `entry 2 (key ID "k2"): the key is not base64`,
		" ; ;":                          "holds no key",
	} {
		_, err := Parse(spec)
		require.Error(t, err, spec)
		require.ErrorContains(t, err, "SIGNALBOX_PAYLOAD_KEYS (value hidden)")
		require.ErrorContains(t, err, want)
		for _, key := range []string{good, short, alnum} {
			require.NotContains(t, err.Error(), strings.TrimRight(key, "=")[:12])
		}
	}
}

func TestParseAcceptsWhatKeyToolsPrint(t *testing.T) {
	k := newKey(t)
	c, err := Parse(" k2 = " + strings.TrimRight(k, "=") + " ; k1=" + newKey(t) + ";\n")
	require.NoError(t, err)
	require.Equal(t, []string{"k2", "k1"}, c.KeyIDs())
}

func TestFailureMessagesAreEncryptedWithTheKeys(t *testing.T) {
	appErr := temporal.NewApplicationError("Stripe refused ada@example.com", "Refused")
	f := mustParse(t, "k1="+newKey(t)).FailureConverter().ErrorToFailure(appErr)
	raw, err := proto.Marshal(f)
	require.NoError(t, err)
	require.False(t, bytes.Contains(raw, []byte("ada@example.com")), "the message travels encrypted")

	plain := mustParse(t, "").FailureConverter().ErrorToFailure(appErr)
	require.Equal(t, "Stripe refused ada@example.com", plain.GetMessage(), "without keys failures stay as they were")
}

func FuzzParse(f *testing.F) {
	f.Add("k1=" + base64.StdEncoding.EncodeToString(make([]byte, 32)))
	f.Add("k2=AAAA;k1=")
	f.Add(";;=;")
	f.Fuzz(func(t *testing.T, spec string) {
		c, err := Parse(spec)
		if err != nil {
			return
		}
		enc, err := c.Encode(leadPayloadsF(t))
		require.NoError(t, err)
		_, err = c.Decode(enc)
		require.NoError(t, err)
	})
}

func leadPayloadsF(t *testing.T) []*commonpb.Payload {
	p, err := converter.GetDefaultDataConverter().ToPayloads("x")
	require.NoError(t, err)
	return p.Payloads
}
