// Package kerneltest makes stand-ins for a kernel package and static
// binaries, so that the image builders can be tested without downloading
// Debian packages: the files are tiny ELF objects with just the parts the
// builders read (a module's .modinfo, a binary's lack of PT_INTERP).
package kerneltest
