package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/stretchr/testify/require"
)

// cleanEnv unsets every variable the programs read, restoring them after the test.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SIGNALBOX_") || strings.HasPrefix(name, "TEMPORAL_") || name == "DATABASE_URL" {
			t.Setenv(name, "")
			require.NoError(t, os.Unsetenv(name))
		}
	}
}

func TestWorkerDefaults(t *testing.T) {
	cleanEnv(t)
	var w Worker
	require.NoError(t, Load(&w))
	require.Equal(t, "127.0.0.1:7233", w.Address)
	require.Equal(t, "default", w.Namespace)
	require.Equal(t, "postgres://postgres@127.0.0.1:5432/signalbox", w.Database.URL)
	require.True(t, w.RegisterSearchAttributes)
	require.Equal(t, Target{Timeout: 10 * time.Second, Rate: 20, Concurrency: 8, RetryWindow: 10 * time.Minute}, w.CRM)
	require.Equal(t, Target{Timeout: 20 * time.Second, Rate: 20, Concurrency: 8, RetryWindow: 10 * time.Minute}, w.Billing)
	require.Equal(t, Target{Timeout: 10 * time.Second, Rate: 5, Concurrency: 4, RetryWindow: 10 * time.Minute}, w.Chat)
	require.Empty(t, w.Operators)
}

func TestLoadResetsTargetDefaults(t *testing.T) {
	cleanEnv(t)
	w := Worker{Chat: Target{Timeout: time.Hour}}
	require.NoError(t, Load(&w))
	require.Equal(t, 10*time.Second, w.Chat.Timeout, "an unset variable takes its default, as with a default tag")
}

func TestVariableNames(t *testing.T) {
	cleanEnv(t)
	env := map[string]string{
		"TEMPORAL_ADDRESS":                     "temporal.internal:7233",
		"TEMPORAL_NAMESPACE":                   "integrations",
		"DATABASE_URL":                         "postgres://app@db:5432/app",
		"SIGNALBOX_REGISTER_SEARCH_ATTRIBUTES": "false",
		"SIGNALBOX_OPERATORS":                  "sales=alice,bob;finance=carol",
		"SIGNALBOX_UI_BASE_URL":                "https://temporal.example.com",
		"SIGNALBOX_CRM_BASE_URL":               "https://api.hubapi.com",
		"SIGNALBOX_CRM_TOKEN":                  "pat-eu1-x",
		"SIGNALBOX_CRM_TIMEOUT":                "11s",
		"SIGNALBOX_CRM_RATE":                   "9.5",
		"SIGNALBOX_CRM_CONCURRENCY":            "3",
		"SIGNALBOX_CRM_RETRY_WINDOW":           "1h",
		"SIGNALBOX_BILLING_TIMEOUT":            "12s",
		"SIGNALBOX_BILLING_RATE":               "7",
		"SIGNALBOX_BILLING_CONCURRENCY":        "2",
		"SIGNALBOX_BILLING_RETRY_WINDOW":       "2h",
		"SIGNALBOX_CHAT_TIMEOUT":               "13s",
		"SIGNALBOX_CHAT_RATE":                  "0.5",
		"SIGNALBOX_CHAT_CONCURRENCY":           "1",
		"SIGNALBOX_CHAT_RETRY_WINDOW":          "3h",
		"SIGNALBOX_CHAT_WEBHOOKS":              "sales=https://hooks.slack.com/services/T/B/X",
		"SIGNALBOX_LOG_LEVEL":                  "debug",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var w Worker
	require.NoError(t, Load(&w))
	require.Equal(t, "temporal.internal:7233", w.Address)
	require.Equal(t, "integrations", w.Namespace)
	require.Equal(t, "postgres://app@db:5432/app", w.Database.URL)
	require.False(t, w.RegisterSearchAttributes)
	require.Equal(t, Operators{"sales": {"alice", "bob"}, "finance": {"carol"}}, w.Operators)
	require.Equal(t, "https://temporal.example.com", w.UIBaseURL)
	require.Equal(t, "https://api.hubapi.com", w.CRMBaseURL)
	require.Equal(t, "pat-eu1-x", w.CRMToken)
	require.Equal(t, Target{Timeout: 11 * time.Second, Rate: 9.5, Concurrency: 3, RetryWindow: time.Hour}, w.CRM)
	require.Equal(t, Target{Timeout: 12 * time.Second, Rate: 7, Concurrency: 2, RetryWindow: 2 * time.Hour}, w.Billing)
	require.Equal(t, Target{Timeout: 13 * time.Second, Rate: 0.5, Concurrency: 1, RetryWindow: 3 * time.Hour}, w.Chat)
	require.Equal(t, "https://hooks.slack.com/services/T/B/X", w.ChatWebhooks["sales"])
	require.Equal(t, "DEBUG", w.Level().String())
}

func TestPrefixedNameWinsOverUsualName(t *testing.T) {
	cleanEnv(t)
	t.Setenv("TEMPORAL_ADDRESS", "usual:7233")
	t.Setenv("SIGNALBOX_TEMPORAL_ADDRESS", "prefixed:7233")
	var i Intake
	require.NoError(t, Load(&i))
	require.Equal(t, "prefixed:7233", i.Address)
}

func TestBadValuesNameTheVariable(t *testing.T) {
	cases := []struct {
		name, variable, value string
		want                  string
	}{
		{"malformed duration", "SIGNALBOX_CRM_TIMEOUT", "ten seconds", `config: SIGNALBOX_CRM_TIMEOUT="ten seconds" is not a valid duration (e.g. 30s, 5m, 2h)`},
		{"malformed number", "SIGNALBOX_CRM_RATE", "fast", `config: SIGNALBOX_CRM_RATE="fast" is not a valid number`},
		{"malformed bool", "SIGNALBOX_REGISTER_SEARCH_ATTRIBUTES", "yes please", `config: SIGNALBOX_REGISTER_SEARCH_ATTRIBUTES="yes please" is not a valid boolean`},
		{"zero rate", "SIGNALBOX_CRM_RATE", "0", `config: SIGNALBOX_CRM_RATE="0" must be greater than zero`},
		{"window shorter than timeout", "SIGNALBOX_CRM_RETRY_WINDOW", "1s", `config: SIGNALBOX_CRM_RETRY_WINDOW="1s" must be at least SIGNALBOX_CRM_TIMEOUT (10s)`},
		{"zero billing rate", "SIGNALBOX_BILLING_RATE", "0", `config: SIGNALBOX_BILLING_RATE="0" must be greater than zero`},
		{"billing window shorter than its timeout", "SIGNALBOX_BILLING_RETRY_WINDOW", "15s", `config: SIGNALBOX_BILLING_RETRY_WINDOW="15s" must be at least SIGNALBOX_BILLING_TIMEOUT (20s)`},
		{"malformed billing timeout", "SIGNALBOX_BILLING_TIMEOUT", "soon", `config: SIGNALBOX_BILLING_TIMEOUT="soon" is not a valid duration`},
		{"zero chat concurrency", "SIGNALBOX_CHAT_CONCURRENCY", "0", `config: SIGNALBOX_CHAT_CONCURRENCY="0" must be at least 1`},
		{"zero chat timeout", "SIGNALBOX_CHAT_TIMEOUT", "0s", `config: SIGNALBOX_CHAT_TIMEOUT="0s" must be greater than zero`},
		{"address without port", "TEMPORAL_ADDRESS", "localhost", `config: TEMPORAL_ADDRESS="localhost" must be host:port`},
		{"empty database URL", "DATABASE_URL", "", `config: DATABASE_URL (value hidden) must not be empty`},
		{"bad database URL", "DATABASE_URL", "postgres://u:secret@host:notaport/db", `config: DATABASE_URL is not a valid PostgreSQL connection string`},
		{"relative CRM URL", "SIGNALBOX_CRM_BASE_URL", "/crm", `config: SIGNALBOX_CRM_BASE_URL="/crm" must be an absolute URL`},
		{"operators without team", "SIGNALBOX_OPERATORS", "alice,bob", `config: SIGNALBOX_OPERATORS="alice,bob" is not a valid config.Operators (entry 1 must be name=value`},
		{"webhooks are secrets", "SIGNALBOX_CHAT_WEBHOOKS", "sales:https://hooks.slack.com/services/T/B/secret", `config: SIGNALBOX_CHAT_WEBHOOKS (value hidden) is not a valid config.TeamMap`},
		{"unknown log level", "SIGNALBOX_LOG_LEVEL", "loud", `config: SIGNALBOX_LOG_LEVEL="loud" must be debug, info, warn or error`},
		{"webhook not a URL", "SIGNALBOX_CHAT_WEBHOOKS", "sales=hooks", `config: SIGNALBOX_CHAT_WEBHOOKS: the URL of team "sales" must be an absolute http(s) URL`},
		{"decision keys that name none", "SIGNALBOX_DECISION_KEYS", ";", `config: SIGNALBOX_DECISION_KEYS is set but names no key`},
		{"a decision key that is no key", "SIGNALBOX_DECISION_KEYS", "alice=bm90LWEta2V5", `config: SIGNALBOX_DECISION_KEYS: the key of "alice" is not a base64 ed25519 public key`},
		{"console keys that name none", "SIGNALBOX_CONSOLE_KEYS", " ; ", `config: SIGNALBOX_CONSOLE_KEYS is set but names no key`},
		{"a console key that is no key", "SIGNALBOX_CONSOLE_KEYS", "console=bm90LWEta2V5", `config: SIGNALBOX_CONSOLE_KEYS: the key of "console" is not a base64 ed25519 public key`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv(tc.variable, tc.value)
			var w Worker
			err := Load(&w)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "\n", "the error must be one line")
			require.NotContains(t, err.Error(), "secret", "the error must not echo a password")
		})
	}
}

type needsToken struct {
	Token string `required:"true"`
}

func (needsToken) Validate() error { return nil }

func TestMissingRequiredValue(t *testing.T) {
	cleanEnv(t)
	err := Load(&needsToken{})
	require.EqualError(t, err, "config: SIGNALBOX_TOKEN is required but not set")
}

func TestOperatorsDecode(t *testing.T) {
	var o Operators
	require.NoError(t, o.Decode(" sales = bob, alice ,bob ; finance=carol ;"))
	require.Equal(t, Operators{"sales": {"alice", "bob"}, "finance": {"carol"}}, o)

	require.ErrorContains(t, o.Decode("sales=alice;sales=bob"), `team "sales" appears twice`)
	require.ErrorContains(t, o.Decode("sales=al ice"), `operator "al ice" of team "sales" must be a single word`)
	require.ErrorContains(t, o.Decode("=alice"), "entry 1 must be name=value")
}

func TestTemporalTLSPairs(t *testing.T) {
	tc := Temporal{Address: "a:1", Namespace: "n", TLSClientCertPath: "/cert.pem"}
	require.ErrorContains(t, tc.Validate(), "must be set together")

	opts, err := Temporal{Address: "a:1", Namespace: "n", APIKey: "k"}.ClientOptions(nil)
	require.NoError(t, err)
	require.NotNil(t, opts.ConnectionOptions.TLS, "an API key implies TLS")
	require.NotNil(t, opts.Credentials)

	opts, err = Temporal{Address: "a:1", Namespace: "n"}.ClientOptions(nil)
	require.NoError(t, err)
	require.Nil(t, opts.ConnectionOptions.TLS)
}

// TestREADMEListsEveryVariable keeps the README's configuration table true.
func TestREADMEListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	for _, spec := range []Validator{&Worker{}, &Intake{}, &Signals{}, &Sandbox{}} {
		var keys strings.Builder
		require.NoError(t, envconfig.Usagef(Prefix, spec, &keys, "{{range .}}{{usage_key .}}\n{{end}}"))
		for _, key := range strings.Fields(keys.String()) {
			// Connection settings are documented under their usual names.
			usual := strings.TrimPrefix(key, "SIGNALBOX_")
			if strings.HasPrefix(usual, "TEMPORAL_") || usual == "DATABASE_URL" {
				key = usual
			}
			require.True(t, strings.Contains(string(readme), "`"+key+"`"), "README.md's configuration table lacks %s", key)
		}
	}
}

// TestREADMEGivesEveryWorkerDefault keeps the README's defaults true: a variable
// set to the default its table row gives must load as if it were unset. This
// covers the limits of each target, whose defaults are code, not struct tags.
func TestREADMEGivesEveryWorkerDefault(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	defaults := map[string]string{} // variable -> its row's default column
	for _, line := range strings.Split(string(readme), "\n") {
		cols := strings.Split(line, " | ")
		if !strings.HasPrefix(line, "| `") || len(cols) < 4 {
			continue
		}
		for _, name := range strings.Split(strings.TrimPrefix(cols[0], "| "), ", ") {
			defaults[strings.Trim(name, "`")] = cols[2]
		}
	}

	cleanEnv(t)
	var want Worker
	require.NoError(t, Load(&want))
	var keys strings.Builder
	require.NoError(t, envconfig.Usagef(Prefix, &Worker{}, &keys, "{{range .}}{{usage_key .}}\n{{end}}"))
	checked := 0
	for _, key := range strings.Fields(keys.String()) {
		documented := strings.TrimPrefix(key, "SIGNALBOX_")
		if !strings.HasPrefix(documented, "TEMPORAL_") && documented != "DATABASE_URL" {
			documented = key
		}
		column, ok := defaults[documented]
		require.True(t, ok, "README.md's configuration table lacks %s", documented)
		value, isValue := strings.CutPrefix(column, "`")
		if !isValue {
			continue // no default, or one described in words
		}
		value, _, _ = strings.Cut(value, "`")
		t.Run(key, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv(key, value)
			var got Worker
			require.NoError(t, Load(&got))
			require.Equal(t, want, got, "README.md gives %s=%s as the default; Load's default differs", documented, value)
		})
		checked++
	}
	for _, target := range []string{"CRM", "BILLING", "CHAT"} {
		for _, limit := range []string{"TIMEOUT", "RATE", "CONCURRENCY", "RETRY_WINDOW"} {
			key := "SIGNALBOX_" + target + "_" + limit
			require.Contains(t, keys.String(), key+"\n")
			require.True(t, strings.HasPrefix(defaults[key], "`"), "README.md gives no default for %s", key)
		}
	}
	require.Greater(t, checked, 12)
}

func TestIntakeAuthIsRequiredToServe(t *testing.T) {
	t.Parallel()
	var i Intake
	require.ErrorContains(t, i.CheckIntakeAuth(), "the intake needs SIGNALBOX_INTAKE_TOKENS or SIGNALBOX_INTAKE_HMAC_SECRETS")
	i.IntakeTokens = TeamMap{"webform": "short"}
	err := i.CheckIntakeAuth()
	require.ErrorContains(t, err, `SIGNALBOX_INTAKE_TOKENS: the secret of source "webform" must be at least 16 characters`)
	require.NotContains(t, err.Error(), "short")
	i.IntakeTokens = TeamMap{"webform": "0123456789abcdef"}
	require.NoError(t, i.CheckIntakeAuth())
}

func TestSLAsAreReadByKind(t *testing.T) {
	var s SLAs
	require.NoError(t, s.Decode("ConsentMissing=8h/7d; Conflict=30m"))
	require.Equal(t, SLAs{"ConsentMissing": {SLA: 8 * time.Hour, Deadline: 7 * 24 * time.Hour}, "Conflict": {SLA: 30 * time.Minute}}, s)
	for _, bad := range []string{"ConsentMissing=soon", "ConsentMissing=8h/1h", "Conflict=0s", "x"} {
		require.Error(t, s.Decode(bad), bad)
	}
}

func TestSecretsAreReadFromFiles(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "crm-token")
	require.NoError(t, os.WriteFile(token, []byte("pat-from-a-file\n"), 0o600))
	t.Setenv("SIGNALBOX_CRM_TOKEN", "")
	t.Setenv("SIGNALBOX_CRM_TOKEN_FILE", token)
	var w Worker
	require.NoError(t, Load(&w))
	require.Equal(t, "pat-from-a-file", w.CRMToken, "the file's content, its newline dropped")

	t.Setenv("SIGNALBOX_CRM_TOKEN", "pat-from-the-environment")
	require.EqualError(t, Load(&Worker{}), "config: SIGNALBOX_CRM_TOKEN and SIGNALBOX_CRM_TOKEN_FILE are both set: set one")

	t.Setenv("SIGNALBOX_CRM_TOKEN", "")
	t.Setenv("SIGNALBOX_CRM_TOKEN_FILE", filepath.Join(dir, "missing"))
	err := Load(&Worker{})
	require.ErrorContains(t, err, "SIGNALBOX_CRM_TOKEN_FILE: cannot read "+filepath.Join(dir, "missing"))
	require.NotContains(t, err.Error(), "pat-", "no secret in the message")
}
