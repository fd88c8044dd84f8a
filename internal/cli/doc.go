// Package cli is the outpost command: a cobra command tree over the typed
// client in package client, plus the hub's own "outpost server" command.
//
// Connection settings come from the config file written by "outpost login"
// ($OUTPOST_CONFIG, else $XDG_CONFIG_HOME/outpost/config.yaml, else
// ~/.config/outpost/config.yaml), overridden by the environment
// (OUTPOST_SERVER, OUTPOST_TOKEN, OUTPOST_CA_FILE,
// OUTPOST_INSECURE_SKIP_VERIFY, OUTPOST_PROJECT), overridden in turn by
// flags. Nothing prompts: every command can run from scripts and tests, and
// "-o json" prints the API objects exactly as the hub returns them.
package cli
