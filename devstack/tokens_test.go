package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/config"
)

// The demo operators' console tokens are made once, readable by you alone,
// and read again on the next run; a damaged file is refused with what to do.
func TestConsoleTokensAreMadeOnceAndKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, path, err := consoleTokens(dir)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "console-tokens"), path)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "readable by you alone")

	var operators []string
	seen := map[string]bool{}
	for _, tok := range first {
		operators = append(operators, tok.operator)
		require.Len(t, tok.token, 48, "24 random bytes in hex")
		require.False(t, seen[tok.token], "one token each")
		seen[tok.token] = true
	}
	require.Equal(t, []string{"alice", "bob", "dieter", "erin", "olga", "carol"}, operators)
	var parsed config.ConsoleTokens
	require.NoError(t, parsed.Decode(first.setting()), "the console takes them as they are")
	name, ok := parsed.Operator(first[0].token)
	require.True(t, ok)
	require.Equal(t, "alice", name)

	again, _, err := consoleTokens(dir)
	require.NoError(t, err)
	require.Equal(t, first, again, "the next run reads the same tokens")
	require.Contains(t, first.banner(path), first[0].token)

	require.NoError(t, os.WriteFile(path, []byte("alice=short"), 0o600))
	_, _, err = consoleTokens(dir)
	require.ErrorContains(t, err, "delete it: the next run makes new ones")
	require.NoError(t, os.WriteFile(path, []byte(strings.Split(first.setting(), ";")[0]), 0o600))
	_, _, err = consoleTokens(dir)
	require.ErrorContains(t, err, "no token of bob")
}
