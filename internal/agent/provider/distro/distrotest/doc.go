// Package distrotest is the harness of the provider contract tests: a
// temporary root standing for the host, a recording command runner, a fake
// hub artifact cache serving fake artifacts with correct checksum files,
// layers rendered from the built-in catalog as the hub would, and golden
// files that list what an action did to the host.
//
// # Golden files
//
// testdata/<action>.golden of a provider package reads, in this order:
//
//	# <title>
//	== commands
//	<every command run, in order, as a shell would take it>
//	    <<< <stdin, when the command got some>
//	== systemd units
//	<unit file>  <mode>  new|changed|unchanged|removed  [systemctl <verbs>]
//	  | <content, for new and changed units>
//	== files
//	<path>  <mode>  new|changed   (or "dir" for an empty directory)
//	  | <content>                 (text files)
//	  sha256:<hex> (<n> bytes)    (binaries and the artifact cache)
//	== removed
//	<path>
//
// Units and files list what the action created or changed under the root
// (the host's /proc and /sys fixtures aside); removed lists what it
// deleted. Run the package's tests with -update to rewrite them, and read
// the diff.
package distrotest
