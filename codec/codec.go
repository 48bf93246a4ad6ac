// Package codec encrypts the payloads signalbox sends to Temporal — workflow
// inputs and results, activity arguments, signals, updates, queries,
// summaries, failure messages — with AES-256-GCM, so that Temporal's
// database, its UI and its CLI hold ciphertext only. Search attributes are
// not payloads the codec sees; they stay plain identifiers.
//
// Keys come from SIGNALBOX_PAYLOAD_KEYS, "k2=<base64>;k1=<base64>": the first
// key encrypts and every key decrypts, and each encrypted payload names its
// key's ID in its metadata, so keys rotate without downtime (docs/encryption.md).
// A payload encrypted with a key this process does not hold fails with an
// error naming that key's ID; a plain payload (written before encryption was
// turned on) is read as it is.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Variable is the environment variable that holds the keys.
const Variable = "SIGNALBOX_PAYLOAD_KEYS"

// The metadata of an encrypted payload, as Temporal's samples and tools name it.
const (
	Encoding      = "binary/encrypted"
	MetadataKeyID = "encryption-key-id"
)

// keySize is AES-256's.
const keySize = 32

// keyID is what an ID may be: short enough that a key (43 characters in
// base64) is never taken for one and printed in an error.
var keyID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// Codec is a converter.PayloadCodec that encrypts with its first key and
// decrypts with any of its keys. A Codec without keys encrypts nothing and
// reports encrypted payloads it meets, naming their key.
type Codec struct {
	ids  []string // in the order given; ids[0] encrypts
	aead map[string]cipher.AEAD
}

// Parse reads keys given as "id=<base64 of 32 bytes>;id=...": the first
// encrypts, all decrypt. An empty spec gives a Codec without keys. Errors name
// the variable and the entry at fault, never a key's value.
func Parse(spec string) (*Codec, error) {
	c := &Codec{aead: map[string]cipher.AEAD{}}
	if strings.TrimSpace(spec) == "" {
		return c, nil
	}
	for i, entry := range strings.Split(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue // a trailing ";"
		}
		where := fmt.Sprintf("%s (value hidden): entry %d", Variable, i+1)
		id, encoded, ok := strings.Cut(entry, "=")
		id, encoded = strings.TrimSpace(id), strings.TrimSpace(encoded)
		if !ok || encoded == "" || !keyID.MatchString(id) {
			return nil, fmt.Errorf("%s is not ID=<base64 key>: write each key as an ID (letters, digits, '.', '_', '-', up to 32) and its key, e.g. k2=<base64>;k1=<base64>", where)
		}
		where += fmt.Sprintf(" (key ID %q)", id)
		if _, dup := c.aead[id]; dup {
			return nil, fmt.Errorf("%s: the ID is given twice: every key needs an ID of its own", where)
		}
		key, err := decodeKey(encoded)
		if err != nil {
			return nil, fmt.Errorf("%s: the key is not base64: make one with `openssl rand -base64 32`", where)
		}
		if len(key) != keySize {
			return nil, fmt.Errorf("%s: the key is %d bytes; AES-256 needs %d: make one with `openssl rand -base64 32`", where, len(key), keySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		c.ids = append(c.ids, id)
		c.aead[id] = gcm
	}
	if len(c.ids) == 0 {
		return nil, fmt.Errorf("%s (value hidden) holds no key: set it to ID=<base64 key>[;ID=<base64 key>...], or unset it to turn encryption off", Variable)
	}
	return c, nil
}

// decodeKey accepts standard base64, padded (openssl's) or not.
func decodeKey(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// Encrypts reports whether the codec has a key to encrypt with.
func (c *Codec) Encrypts() bool { return len(c.ids) > 0 }

// KeyIDs are the IDs of the keys, the encrypting one first.
func (c *Codec) KeyIDs() []string { return append([]string(nil), c.ids...) }

// Encode encrypts each payload with the first key: the payload, marshalled,
// sealed under a fresh random nonce, with its key's ID as additional data so
// that a payload relabelled with another ID fails to open.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if !c.Encrypts() {
		return payloads, nil
	}
	id := c.ids[0]
	aead := c.aead[id]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("encrypt a payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		_, _ = rand.Read(nonce) // never fails: Go's crypto/rand crashes the program rather than return an error
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding), MetadataKeyID: []byte(id)},
			Data:     aead.Seal(nonce, nonce, plain, []byte(id)),
		}
	}
	return out, nil
}

// Decode decrypts each encrypted payload and passes plain ones through. An
// error fails the whole batch, naming the key and what to do; during a
// workflow task it fails that task, which Temporal retries, rather than the
// item: a key missing from one worker is a deployment to fix, not a reason to
// fail the item.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		plain, err := c.decrypt(p)
		if err != nil {
			return payloads, converter.NewWorkflowTaskFailureError(err)
		}
		out[i] = plain
	}
	return out, nil
}

func (c *Codec) decrypt(p *commonpb.Payload) (*commonpb.Payload, error) {
	id := string(p.GetMetadata()[MetadataKeyID])
	aead, ok := c.aead[id]
	switch {
	case !ok && !c.Encrypts():
		return nil, fmt.Errorf("a payload is encrypted with key ID %q but %s is not set: set it (or %[2]s_FILE) to the keys signalbox's workers use", id, Variable)
	case !ok:
		return nil, fmt.Errorf("a payload is encrypted with key ID %q, which %s does not hold (it holds %s): add that key to %[2]s, after the first", id, Variable, strings.Join(c.ids, ", "))
	}
	data := p.GetData()
	if len(data) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("a payload encrypted with key ID %q is %d bytes, too short to be one: it was cut or altered", id, len(data))
	}
	nonce, sealed := data[:aead.NonceSize()], data[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, sealed, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("a payload encrypted with key ID %q does not decrypt: it was altered, or %s holds another key under that ID", id, Variable)
	}
	out := &commonpb.Payload{}
	if err := proto.Unmarshal(plain, out); err != nil {
		return nil, fmt.Errorf("a payload encrypted with key ID %q decrypts to no payload: %w", id, err)
	}
	return out, nil
}

// DataConverter is Temporal's default data converter with this codec on
// every payload.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter carries failure messages and stack traces inside an
// encrypted payload when the codec encrypts: an error from a CRM or Stripe
// may quote the data it refused (an email address). Without keys it is the
// default, so that nothing changes where encryption is off.
func (c *Codec) FailureConverter() converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          c.DataConverter(),
		EncodeCommonAttributes: c.Encrypts(),
	})
}
