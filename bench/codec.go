package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/codec"
	"github.com/signalbox-dev/signalbox/stack"
	"github.com/signalbox-dev/signalbox/store/storetest"
	"github.com/signalbox-dev/signalbox/workflows"
)

const codecHeading = "## Payload encryption"

// codecResult is what payload encryption costs: per payload, in this
// process, and on the lead path, with and without it.
type codecResult struct {
	Started  time.Time
	Duration time.Duration
	// PlainBytes and EncryptedBytes are a lead's input payload, marshalled.
	PlainBytes, EncryptedBytes int
	// Encrypt and Decrypt are the codec alone, per payload; Convert and
	// ConvertEncrypted a value to its payload and back, as the SDK does it
	// (JSON), without and with the codec.
	Encrypt, Decrypt, Convert, ConvertEncrypted time.Duration
	// PlainRounds and EncryptedRounds are the lead path's items/s in
	// alternating rounds on two stacks alike but for the keys;
	// PlainCPU and EncryptedCPU the worker process's CPU per item (ms) in
	// each round, which a loaded machine changes less than throughput.
	Items                        int
	PlainRounds, EncryptedRounds []float64
	PlainCPU, EncryptedCPU       []float64
	// PayloadsPerItem counts the encrypted payloads in a lead's history:
	// each was encrypted once and decrypted at least once.
	PayloadsPerItem int
}

// benchCodec measures the codec per payload, then the lead path on a stack
// without keys and on one with, alternating.
func benchCodec(ctx context.Context, o options) (res codecResult, err error) {
	res = codecResult{Started: time.Now(), Items: o.items}
	defer func() { res.Duration = time.Since(res.Started) }()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keys := "bench=" + base64.StdEncoding.EncodeToString(key)
	if err := res.perPayload(keys); err != nil {
		return res, err
	}
	if o.items == 0 {
		return res, nil
	}
	plain, stopPlain, err := codecStack(ctx, o, "")
	if err != nil {
		return res, err
	}
	defer stopPlain()
	encrypted, stopEncrypted, err := codecStack(ctx, o, keys)
	if err != nil {
		return res, err
	}
	defer stopEncrypted()
	warm := o
	warm.items = 2 * o.concurrency
	progress("encryption: warming up both stacks")
	for _, s := range []*stack.Stack{plain, encrypted} {
		if _, err := happyPath(ctx, s.Client, warm, "bench-codec-warm", startLead(true)); err != nil {
			return res, err
		}
	}
	// run runs one round on s: its items/s, and its worker's CPU per item.
	run := func(s *stack.Stack, prefix string) (float64, float64, error) {
		before, _, _ := procCPU(s.Worker.PID())
		p, err := happyPath(ctx, s.Client, o, prefix, startLead(true))
		after, _, _ := procCPU(s.Worker.PID())
		return p.throughput(), (after - before) * 1000 / float64(o.items), err
	}
	for round := 1; round <= compareRounds; round++ {
		progress("encryption: round %d of %d: %d leads without keys, then with", round, compareRounds, o.items)
		pRate, pCPU, err := run(plain, fmt.Sprintf("bench-plain-%d", round))
		if err != nil {
			return res, err
		}
		eRate, eCPU, err := run(encrypted, fmt.Sprintf("bench-encrypted-%d", round))
		if err != nil {
			return res, err
		}
		res.PlainRounds, res.EncryptedRounds = append(res.PlainRounds, pRate), append(res.EncryptedRounds, eRate)
		res.PlainCPU, res.EncryptedCPU = append(res.PlainCPU, pCPU), append(res.EncryptedCPU, eCPU)
	}
	res.PayloadsPerItem, err = encryptedPayloads(ctx, encrypted)
	return res, err
}

// encryptedPayloads runs one lead on s and counts the encrypted payloads
// its history holds, as Temporal stores it.
func encryptedPayloads(ctx context.Context, s *stack.Stack) (int, error) {
	key := fmt.Sprintf("bench-codec-count-%d", time.Now().UnixNano())
	run, err := startLead(true)(ctx, s.Client, key)
	if err == nil {
		err = run.Get(ctx, nil)
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var count func(m protoreflect.Message)
	count = func(m protoreflect.Message) {
		if p, ok := m.Interface().(*commonpb.Payload); ok {
			if string(p.GetMetadata()[converter.MetadataEncoding]) == codec.Encoding {
				n++
			}
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := range v.List().Len() {
					count(v.List().Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool { count(mv.Message()); return true })
			case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
				count(v.Message())
			}
			return true
		})
	}
	iter := s.Client.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, 0)
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			return 0, err
		}
		count(e.ProtoReflect())
	}
	return n, nil
}

// perPayload times the codec on a lead's input, the payload most items carry.
func (r *codecResult) perPayload(keys string) error {
	c, err := codec.Parse(keys)
	if err != nil {
		return err
	}
	input := workflows.LeadInput{ItemInput: api.ItemInput{StartedBy: "intake:webform"}, Lead: benchLead("bench-codec-0001", true)}
	plain, err := converter.GetDefaultDataConverter().ToPayloads(input)
	if err != nil {
		return err
	}
	enc, err := c.Encode(plain.Payloads)
	if err != nil {
		return err
	}
	r.PlainBytes, r.EncryptedBytes = proto.Size(plain.Payloads[0]), proto.Size(enc[0])
	progress("encryption: the codec per payload (%d bytes)", r.PlainBytes)
	perOp := func(fn func() error) (time.Duration, error) {
		var failed error
		res := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				if err := fn(); err != nil {
					failed = err
					b.FailNow()
				}
			}
		})
		return time.Duration(res.NsPerOp()), failed
	}
	dc, plainDC := c.DataConverter(), converter.GetDefaultDataConverter()
	convert := func(dc converter.DataConverter) func() error {
		return func() error {
			p, err := dc.ToPayloads(input)
			if err != nil {
				return err
			}
			var back workflows.LeadInput
			return dc.FromPayloads(p, &back)
		}
	}
	for _, m := range []struct {
		into *time.Duration
		fn   func() error
	}{
		{&r.Encrypt, func() error { _, err := c.Encode(plain.Payloads); return err }},
		{&r.Decrypt, func() error { _, err := c.Decode(enc); return err }},
		{&r.Convert, convert(plainDC)},
		{&r.ConvertEncrypted, convert(dc)},
	} {
		if *m.into, err = perOp(m.fn); err != nil {
			return err
		}
	}
	return nil
}

// codecStack starts a stack for the encryption rounds, encrypting with keys
// (none: plain), with the vendor limits lifted as in the main section, and
// returns what stops it and removes its database and logs.
func codecStack(ctx context.Context, o options, keys string) (_ *stack.Stack, stop func(), err error) {
	dbURL, drop, err := storetest.NewDatabase(storetest.ServerURL())
	if err != nil {
		return nil, nil, err
	}
	dataDir, err := os.MkdirTemp("", "signalbox-bench-codec-")
	if err != nil {
		_ = drop()
		return nil, nil, err
	}
	which := "without keys"
	if keys != "" {
		which = "with keys"
	}
	progress("encryption: starting a stack %s (logs in %s)", which, dataDir)
	s, err := stack.Start(ctx, stack.Options{
		BinDir: o.binDir, TemporalCLI: filepath.Join(o.binDir, "temporal"), StripeMock: filepath.Join(o.binDir, "stripe-mock"),
		DataDir: dataDir, DatabaseURL: dbURL, PayloadKeys: keys,
		Env: []string{"SIGNALBOX_OPERATORS=sales=alice", "SIGNALBOX_LOG_LEVEL=warn",
			"SIGNALBOX_CRM_RATE=100000", "SIGNALBOX_CHAT_RATE=100000", "SIGNALBOX_CRM_CONCURRENCY=64", "SIGNALBOX_CHAT_CONCURRENCY=64"},
	})
	if err == nil && s.Encrypted() != (keys != "") {
		s.Stop()
		err = fmt.Errorf("the stack %s encrypts: %v (is SIGNALBOX_PAYLOAD_KEYS set in your environment? unset it for make bench)", which, s.Encrypted())
	}
	if err != nil {
		_ = drop()
		keepLogsOnFailure(dataDir, &err)
		return nil, nil, err
	}
	return s, func() { s.Stop(); _ = drop(); _ = os.RemoveAll(dataDir) }, nil
}

// codecSection is the report's section on payload encryption.
func (r *report) codecSection() string {
	c := r.Codec
	if c == nil {
		return ""
	}
	b := sectionStart(codecHeading, c.Started, c.Duration)
	fmt.Fprintf(b, "Command: `make bench BENCH_FLAGS='-only codec'` (`go run ./bench -only codec -items %d -concurrency %d`).\n\n```\n", c.Items, r.Options.concurrency)
	fmt.Fprintf(b, "a lead's input payload: %d bytes plain, %d encrypted (+%d: nonce, tag, key ID, the original metadata)\n",
		c.PlainBytes, c.EncryptedBytes, c.EncryptedBytes-c.PlainBytes)
	fmt.Fprintf(b, "codec alone, per payload: encrypt %s, decrypt %s\n", micros(c.Encrypt), micros(c.Decrypt))
	fmt.Fprintf(b, "value → payload → value (JSON, as the SDK converts): %s plain, %s encrypted (+%s)\n",
		micros(c.Convert), micros(c.ConvertEncrypted), micros(c.ConvertEncrypted-c.Convert))
	if c.PayloadsPerItem > 0 {
		perItem := time.Duration(c.PayloadsPerItem) * (c.Encrypt + c.Decrypt)
		fmt.Fprintf(b, "a lead's history holds %d encrypted payloads: each encrypted once and decrypted at least once, about %s of codec CPU per item\n",
			c.PayloadsPerItem, micros(perItem))
	}
	if len(c.PlainRounds) > 0 {
		ratio := median(c.EncryptedRounds) / max(median(c.PlainRounds), 1e-9)
		fmt.Fprintf(b, "lead path, %d items at concurrency %d, %d alternating rounds, items/s: without keys %s (median %.1f); with keys %s (median %.1f)\n",
			c.Items, r.Options.concurrency, len(c.PlainRounds), rounds(c.PlainRounds), median(c.PlainRounds), rounds(c.EncryptedRounds), median(c.EncryptedRounds))
		fmt.Fprintf(b, "with keys ÷ without (medians): %.2f\n", ratio)
		fmt.Fprintf(b, "worker CPU per item, ms: without keys %s (median %.1f); with keys %s (median %.1f); %+.1f ms (%+.0f%%)\n",
			rounds(c.PlainCPU), median(c.PlainCPU), rounds(c.EncryptedCPU), median(c.EncryptedCPU),
			median(c.EncryptedCPU)-median(c.PlainCPU), 100*(median(c.EncryptedCPU)/max(median(c.PlainCPU), 1e-9)-1))
	}
	b.WriteString("```\n\n")
	b.WriteString(`Each payload an item carries — its input, every activity's arguments and result, the decisions,
queries, summaries and failure messages — is encrypted once by the process that writes it and
decrypted by each that reads it: the codec's own CPU per item is about the count above times the
per-payload figures. The end-to-end rounds measure everything encryption changes (larger
payloads, allocations, the converter's extra pass) on two stacks that run side by side, each idle
while the other's round runs, the rounds alternating so that a change in the machine's load falls
on both; on a shared 2-core machine both throughput and CPU per item swing between rounds by as
much as encryption adds. docs/encryption.md says what is encrypted and what stays plain.
`)
	return b.String()
}

func micros(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d.Nanoseconds())/1000) }

// rounds lists throughputs as "a, b, c".
func rounds(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(parts, ", ")
}
