#!/bin/sh
# /init of the Outpost boot image, written by "outpost build iso". It brings
# the machine up far enough for outpost-agent (modules, site settings,
# network, machine-id) and then keeps the agent running: as PID 1 it must
# never exit, or the kernel panics.
#
# Kernel command line: outpost.machine_id=HEX32 (else random),
# outpost.hostname=NAME, outpost.log_level=debug|info|warn|error,
# outpost.cidata_wait=SECONDS (how long to look for a seed; default 5),
# outpost.shell=1 (a shell on the console next to the agent).

/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /run /tmp /var/lib/outpost-agent
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
# The agent's identity and spec cache: the image has no disk of its own.
mount -t tmpfs -o mode=0700 tmpfs /var/lib/outpost-agent
mkdir -p /run/outpost /run/cidata /run/media
exec </dev/console >/dev/console 2>&1

log() { echo "outpost-init: $*"; }

# arg NAME prints the value of outpost.NAME= on the kernel command line.
arg() {
	for w in $(cat /proc/cmdline); do
		case "$w" in "outpost.$1="*) echo "${w#*=}"; return 0 ;; esac
	done
	return 1
}

log "kernel $(uname -r)"

# Modules, dependencies first (the builder worked out the order).
while read -r m; do
	[ -n "$m" ] || continue
	out=$(insmod "$m" 2>&1) || case "$out" in
		*"File exists"*) ;;
		*) log "insmod $m: $out" ;;
	esac
done </etc/outpost/modules

# Site settings: a NoCloud seed (the site's own, so it wins), then the boot
# medium (what "outpost build installer" added), then the baked copy.
wait=$(arg cidata_wait) || wait=5
seed="" media=""
i=0
while :; do
	[ -n "$seed" ] || seed=$(findfs LABEL=cidata 2>/dev/null)
	[ -n "$media" ] || media=$(findfs LABEL=@MEDIA_LABEL@ 2>/dev/null)
	[ -n "$seed" ] && break
	[ "$i" -ge $((wait * 5)) ] && break
	sleep 0.2
	i=$((i + 1))
done
if [ -n "$seed" ] && ! mount -t iso9660 -o ro "$seed" /run/cidata 2>/dev/null &&
	! mount -o ro "$seed" /run/cidata; then
	log "cannot mount the seed on $seed"
	seed=""
fi
if [ -n "$media" ] && ! mount -t iso9660 -o ro "$media" /run/media; then
	log "cannot mount the boot medium on $media"
	media=""
fi

# pick chooses the settings and their network file; it fails when there
# are none, and the caller looks again (a seed may be attached later).
pick() {
	settings="" net="" from=""
	if [ -n "$seed" ]; then
		if [ -f /run/cidata/@SETTINGS_NAME@ ]; then
			settings=/run/cidata/@SETTINGS_NAME@ net=/run/cidata/@NETWORK_NAME@ from="seed $seed (@SETTINGS_NAME@)"
		elif [ -f /run/cidata/user-data ] && ! head -n 1 /run/cidata/user-data | grep -q '^#cloud-config'; then
			settings=/run/cidata/user-data net=/run/cidata/@NETWORK_NAME@ from="seed $seed (user-data)"
		else
			log "seed $seed has no @SETTINGS_NAME@ and its user-data is cloud-config: not used"
		fi
	fi
	if [ -z "$settings" ] && [ -n "$media" ] && [ -f /run/media/@MEDIA_USER_DATA@ ]; then
		settings=/run/media/@MEDIA_USER_DATA@ net=/run/media/@MEDIA_NETWORK@ from="boot medium $media"
	fi
	if [ -z "$settings" ] && [ -f @BAKED_USER_DATA@ ]; then
		settings=@BAKED_USER_DATA@ net=@BAKED_NETWORK@ from="the image"
	fi
	[ -n "$settings" ]
}
until pick; do
	log "no site settings: attach a seed (outpost build cidata) or bake them in (outpost build iso --user-data); looking again in 10s"
	sleep 10
	seed=$(findfs LABEL=cidata 2>/dev/null) && mount -t iso9660 -o ro "$seed" /run/cidata || seed=""
done
log "settings from $from"
umask 077
cp "$settings" /run/outpost/user-data.yaml
umask 022

# Host name: command line, else the seed's meta-data, else "outpost".
hn=$(arg hostname) ||
	hn=$(sed -n 's/^local-hostname:[[:space:]]*["'\'']\{0,1\}\([A-Za-z0-9.-]*\).*/\1/p' /run/cidata/meta-data 2>/dev/null | head -n 1)
[ -n "$hn" ] || hn=outpost
hostname "$hn"
echo "$hn" >/etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost\n' "$hn" >/etc/hosts

mid=$(arg machine_id) && echo "$mid" | grep -qx '[0-9a-f]\{32\}' || {
	[ -n "$mid" ] && log "outpost.machine_id=$mid is not 32 hex digits: using a random one"
	mid=$(tr -d '-' </proc/sys/kernel/random/uuid)
}
echo "$mid" >/etc/machine-id

# Network: the settings' interfaces, else DHCP on every NIC.
ip link set lo up
: >/etc/resolv.conf
dhcp() {
	ip link set "$1" up
	# -b: after a lease (or 10 tries) udhcpc goes on in the background and
	# renews the lease.
	udhcpc -i "$1" -s /etc/outpost/udhcpc.script -x "hostname:$hn" -t 10 -T 2 -b
}
if [ -f "$net" ] && grep -q '^iface ' "$net"; then
	if grep -q '^nameserver ' "$net"; then
		grep '^nameserver ' "$net" >/etc/resolv.conf
		touch /run/outpost/static-dns
	fi
	while read -r kind name type addr gw; do
		[ "$kind" = iface ] || continue
		if [ ! -e "/sys/class/net/$name" ]; then
			log "$name: no such interface (have: $(ls /sys/class/net | tr '\n' ' '))"
			continue
		fi
		case "$type" in
		dhcp) dhcp "$name" ;;
		static)
			ip link set "$name" up
			ip addr add "$addr" dev "$name" || log "$name: cannot add $addr"
			[ -z "$gw" ] || ip route add default via "$gw" dev "$name" || log "$name: cannot route via $gw"
			log "$name: $addr via ${gw:-none}"
			;;
		esac
	done <"$net"
else
	for d in /sys/class/net/*; do
		n=${d##*/}
		[ "$n" = lo ] || dhcp "$n"
	done
fi

if [ "$(arg shell)" = 1 ]; then
	log "outpost.shell=1: a shell on the console"
	setsid cttyhack sh &
fi

agent=/usr/bin/outpost-agent
if [ -n "$media" ] && [ -x /run/media/@MEDIA_AGENT@ ]; then
	agent=/run/media/@MEDIA_AGENT@
fi
level=$(arg log_level) || level=info
while :; do
	log "starting $agent"
	"$agent" run --user-data /run/outpost/user-data.yaml --log-level "$level"
	log "outpost-agent exited with status $?; starting it again in 5s"
	sleep 5
done
