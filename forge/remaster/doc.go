// Package remaster makes an installer variant from a base ISO, the output of
// `outpost build installer`: the base's files and boot equipment (El Torito
// boot images, catalog, hybrid MBR or GPT, whatever it has) are kept as they
// are, and the site settings, the agent and optional content are added
// under /outpost on the image.
//
// The work is done by xorriso (`-boot_image any replay`), the tool that can
// carry over any base's boot record; the base is typically a vendor's or a
// distribution's installer that nobody here can rebuild. The file names are
// those the Outpost boot image (package initramfs) reads at boot:
// /outpost/user-data.yaml, /outpost/network, /outpost/outpost-agent;
// content goes to /outpost/content/.
package remaster
