#!/bin/sh
# Called by busybox udhcpc with the lease in the environment ($ip, $mask as
# a prefix length, $router, $dns).
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound | renew)
	# A renewal with the same address must not drop the agent's connections.
	if ! ip -4 addr show dev "$interface" | grep -q "inet $ip/"; then
		ip -4 addr flush dev "$interface"
		ip addr add "$ip/${mask:-24}" dev "$interface"
	fi
	if [ -n "$router" ]; then
		ip route del default dev "$interface" 2>/dev/null
		for r in $router; do
			ip route add default via "$r" dev "$interface" && break
		done
	fi
	if [ ! -e /run/outpost/static-dns ] && [ -n "$dns" ]; then
		: >/etc/resolv.conf
		[ -z "$domain" ] || echo "search $domain" >>/etc/resolv.conf
		for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
	fi
	echo "outpost-init: $interface: $ip/${mask:-24} via ${router:-none} ($1)"
	;;
esac
exit 0
