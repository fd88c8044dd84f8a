// Package iso writes ISO9660 images in pure Go: the NoCloud seed (volume
// label "cidata") that carries a site's settings to a VM, and the file tree of
// the boot ISO that `outpost build iso` makes.
//
// Images carry Rock Ridge and Joliet, so lower-case and long names such as
// "user-data" and "meta-data" read back as written on Linux (Rock Ridge) and
// Windows or VMware tools (Joliet); the plain ISO9660 names are 8.3 upper
// case, which no reader of a seed looks at. Writing goes through go-diskfs's
// iso9660 package, which sets the volume label as given (lower case
// included), with two fixes applied afterwards: the file is padded to the
// volume size the descriptor announces, and the descriptors' expiration date
// is cleared (go-diskfs sets it to the creation time).
package iso
