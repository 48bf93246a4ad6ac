package config

// CodecServer configures `signals codec-server`, which decodes payloads for
// the Temporal UI and the temporal CLI.
type CodecServer struct {
	// CodecAddr is where the codec server listens. Default: 127.0.0.1:8089.
	CodecAddr string `split_words:"true" default:"127.0.0.1:8089"`
	// CodecOrigin is the Temporal UI's origin, the only one CORS lets in.
	// Default: http://localhost:8233.
	CodecOrigin string `split_words:"true" default:"http://localhost:8233"`
	// CodecToken is the bearer token callers other than loopback must send.
	// Default: none (loopback callers only).
	CodecToken string `split_words:"true"`
}
