#!/usr/bin/env bash
# setup.sh: a real Kerberos KDC with constrained delegation (Samba AD DC) and a
# Negotiate-protected CAS stand-in (Apache + mod_auth_gssapi), on loopback only,
# for easgate's Kerberos end-to-end tests (test/e2e/kerberos, issue 17).
#
#   setup.sh [start]   install (if missing), provision, start everything
#   setup.sh stop      stop exactly the processes `start` started
#   setup.sh status    show what runs
#
# Everything lives under $EASGATE_KRB_DIR (default /tmp/easgate-krb):
#   samba/      the provisioned domain CORP.TEST (smb.conf with interfaces = lo and
#               bind interfaces only = yes; the KDC on 127.0.0.1:88, no DNS server)
#   krb5.conf   the test-local krb5.conf: kdc = 127.0.0.1; nothing else is touched
#   gw.keytab   the keys of easgate's service account easgate-svc (SPN HTTP/gw.corp.test),
#               trusted for protocol transition and allowed to delegate to HTTP/cas.corp.test only
#   cas.keytab  the keys of HTTP/cas.corp.test for Apache
#   apache/     Apache on 127.0.0.1:$CAS_PORT: /Microsoft-Server-ActiveSync needs Negotiate and
#               answers with the authenticated user (REMOTE_USER) in its body and X-Remote-User
#   pids/       "pid starttime" of every process this script started; `stop` kills only those
#   env         facts for the Go tests (KEY=VALUE lines)
#
# Principals: alice, bob and carol (users), easgate-svc (the gateway), cas-svc (HTTP/cas.corp.test),
# other-svc (HTTP/other.corp.test: a real SPN easgate-svc may NOT delegate to).
# Needs root (packages, port 88). Every wait is bounded.
set -euo pipefail

RUN=${EASGATE_KRB_DIR:-/tmp/easgate-krb}
CAS_PORT=${EASGATE_KRB_CAS_PORT:-20880}
OPEN_PORT=${EASGATE_KRB_OPEN_PORT:-20881} # the same stand-in without authentication (Basic pass-through benchmark)
REALM=CORP.TEST
DOMAIN=CORP
ADMIN_PASS='Adm1n-Pass-7x!'
USER_PASS='User-Pass-7x!'
PACKAGES=(samba-ad-dc samba-ad-provision samba krb5-user apache2 libapache2-mod-auth-gssapi curl)

log() { printf 'setup.sh: %s\n' "$*" >&2; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, binds port 88)"; }

proc_starttime() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	echo "${20}"
}

record_pid() { # name pid
	local st
	st=$(proc_starttime "$2") || die "$1 (pid $2) exited right after start; see $RUN/logs/$1.out"
	echo "$2 $st" >"$RUN/pids/$1"
}

ours() {
	local f="$RUN/pids/$1" pid st now
	[ -f "$f" ] || return 1
	read -r pid st <"$f" || return 1
	now=$(proc_starttime "$pid") || return 1
	[ "$now" = "$st" ] || return 1
	echo "$pid"
}

# stop_group NAME: SIGTERM to the process group we started, SIGKILL after 10 s.
stop_group() {
	local name=$1 pid i
	if ! pid=$(ours "$name"); then
		rm -f "$RUN/pids/$name"
		return 0
	fi
	log "stopping $name (pid $pid)"
	kill -TERM -- "-$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		ours "$name" >/dev/null || break
		sleep 0.1
	done
	if ours "$name" >/dev/null; then
		log "$name did not stop within 10s: SIGKILL"
	fi
	kill -KILL -- "-$pid" 2>/dev/null || true
	rm -f "$RUN/pids/$name"
}

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	# Debian starts daemons on install; a temporary policy-rc.d keeps samba and apache2 down.
	local had_policy=0
	[ -e /usr/sbin/policy-rc.d ] && had_policy=1
	if [ $had_policy -eq 0 ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
	fi
	local rc=0
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >"$RUN/logs/apt.out" 2>&1 ||
		{ apt-get update >>"$RUN/logs/apt.out" 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >>"$RUN/logs/apt.out" 2>&1; } || rc=$?
	[ $had_policy -eq 0 ] && rm -f /usr/sbin/policy-rc.d
	[ $rc -eq 0 ] || { tail -20 "$RUN/logs/apt.out" >&2; die "apt-get install failed"; }
}

port_busy() { # port
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_port() { # port seconds what
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		port_busy "$1" && return 0
		sleep 0.1
	done
	die "$3 did not listen on 127.0.0.1:$1 within $2 s; see $RUN/logs"
}

write_krb5_conf() {
	cat >"$RUN/krb5.conf" <<EOF
[libdefaults]
	default_realm = $REALM
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	udp_preference_limit = 1
	forwardable = true
[realms]
	$REALM = {
		kdc = 127.0.0.1
	}
[domain_realm]
	.corp.test = $REALM
	corp.test = $REALM
EOF
}

SAMBA_TOOL() { samba-tool "$@" -s "$RUN/samba/etc/smb.conf"; }

provision() {
	[ -f "$RUN/samba/provisioned" ] && return 0
	rm -rf "$RUN/samba"
	install -d -m 700 "$RUN/samba"
	log "provisioning $REALM (Samba AD DC, loopback only)"
	samba-tool domain provision --targetdir="$RUN/samba" --realm="$REALM" --domain="$DOMAIN" \
		--server-role=dc --dns-backend=NONE --adminpass="$ADMIN_PASS" --host-name=dc1 \
		--option="interfaces = lo" --option="bind interfaces only = yes" \
		--option="server services = kdc" --option="dns forwarder = 127.0.0.1" \
		>"$RUN/logs/provision.out" 2>&1 || { tail -30 "$RUN/logs/provision.out" >&2; die "provision failed"; }
	# Test passwords only: no expiry, no complexity games.
	SAMBA_TOOL domain passwordsettings set --complexity=off --min-pwd-age=0 --max-pwd-age=0 >/dev/null
	local u
	for u in alice bob carol; do
		SAMBA_TOOL user create "$u" "$USER_PASS" >/dev/null
	done
	SAMBA_TOOL user create easgate-svc --random-password >/dev/null
	SAMBA_TOOL spn add HTTP/gw.corp.test easgate-svc >/dev/null
	SAMBA_TOOL delegation for-any-protocol easgate-svc on >/dev/null
	SAMBA_TOOL delegation add-service easgate-svc HTTP/cas.corp.test >/dev/null
	SAMBA_TOOL user create cas-svc --random-password >/dev/null
	SAMBA_TOOL spn add HTTP/cas.corp.test cas-svc >/dev/null
	SAMBA_TOOL user create other-svc --random-password >/dev/null
	SAMBA_TOOL spn add HTTP/other.corp.test other-svc >/dev/null
	rm -f "$RUN/gw.keytab" "$RUN/cas.keytab"
	SAMBA_TOOL domain exportkeytab "$RUN/gw.keytab" --principal="easgate-svc@$REALM" >/dev/null
	SAMBA_TOOL domain exportkeytab "$RUN/cas.keytab" --principal="HTTP/cas.corp.test@$REALM" >/dev/null
	chmod 600 "$RUN/gw.keytab"
	chown www-data "$RUN/cas.keytab" && chmod 600 "$RUN/cas.keytab"
	touch "$RUN/samba/provisioned"
}

start_samba() {
	ours samba >/dev/null && return 0
	port_busy 88 && die "something else listens on 127.0.0.1:88"
	setsid samba -s "$RUN/samba/etc/smb.conf" -i --debug-stdout >>"$RUN/logs/samba.out" 2>&1 </dev/null &
	local pid=$!
	sleep 0.3
	record_pid samba "$pid"
	wait_port 88 60 "the Samba KDC"
}

write_apache_conf() {
	install -d -m 755 "$RUN/apache" "$RUN/apache/cgi" "$RUN/apache/run"
	cat >"$RUN/apache/cgi/whoami" <<'EOF'
#!/bin/sh
# Read the request body first, as a CAS does: a CGI that exits with the body
# unread makes mod_cgid reset its socket, and Apache then closes the client
# connection without an answer (AH00574 in its error log).
cat >/dev/null
printf 'Content-Type: text/plain\r\nX-Remote-User: %s\r\n\r\n%s\n' "$REMOTE_USER" "$REMOTE_USER"
EOF
	chmod 755 "$RUN/apache/cgi/whoami"
	local m=/usr/lib/apache2/modules
	cat >"$RUN/apache/httpd.conf" <<EOF
ServerRoot "$RUN/apache"
ServerName cas.corp.test
PidFile "$RUN/apache/run/httpd.pid"
Listen 127.0.0.1:$CAS_PORT
Listen 127.0.0.1:$OPEN_PORT
User www-data
Group www-data
ErrorLog "$RUN/logs/apache-error.log"
LogLevel warn auth_gssapi:info
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule authz_user_module $m/mod_authz_user.so
LoadModule authn_core_module $m/mod_authn_core.so
LoadModule auth_gssapi_module $m/mod_auth_gssapi.so
LoadModule alias_module $m/mod_alias.so
LoadModule cgid_module $m/mod_cgid.so
ScriptSock "$RUN/apache/run/cgid.sock"
LogFormat "%h \"%r\" %>s user=%u" easgate
CustomLog "$RUN/logs/apache-access.log" easgate
DocumentRoot "$RUN/apache/cgi"
<VirtualHost 127.0.0.1:$CAS_PORT>
	ScriptAlias /Microsoft-Server-ActiveSync "$RUN/apache/cgi/whoami"
	<Location />
		AuthType GSSAPI
		AuthName "CAS stand-in"
		GssapiCredStore keytab:$RUN/cas.keytab
		GssapiAllowedMech krb5
		GssapiBasicAuth Off
		GssapiLocalName Off
		Require valid-user
	</Location>
</VirtualHost>
<VirtualHost 127.0.0.1:$OPEN_PORT>
	ScriptAlias /Microsoft-Server-ActiveSync "$RUN/apache/cgi/whoami"
</VirtualHost>
EOF
}

start_apache() {
	ours apache >/dev/null && return 0
	port_busy "$CAS_PORT" && die "something else listens on 127.0.0.1:$CAS_PORT"
	chown www-data "$RUN/apache/run"
	KRB5_CONFIG="$RUN/krb5.conf" KRB5RCACHETYPE=none APACHE_RUN_DIR="$RUN/apache/run" \
		setsid apache2 -f "$RUN/apache/httpd.conf" -DFOREGROUND >>"$RUN/logs/apache.out" 2>&1 </dev/null &
	local pid=$!
	sleep 0.3
	record_pid apache "$pid"
	wait_port "$CAS_PORT" 30 "Apache"
}

write_env() {
	cat >"$RUN/env" <<EOF
REALM=$REALM
KDC=127.0.0.1:88
KRB5_CONFIG=$RUN/krb5.conf
KEYTAB=$RUN/gw.keytab
SERVICE_PRINCIPAL=easgate-svc
SPN=HTTP/cas.corp.test
FORBIDDEN_SPN=HTTP/other.corp.test
CAS_URL=http://127.0.0.1:$CAS_PORT
OPEN_URL=http://127.0.0.1:$OPEN_PORT
USER_PASSWORD=$USER_PASS
SETUP=$(readlink -f "$0")
EOF
}

check() {
	# A real S4U round trip with MIT's client, independent of easgate: proves the
	# delegation set-up before the Go suite relies on it.
	local cc="$RUN/check.ccache"
	KRB5_CONFIG="$RUN/krb5.conf" KRB5CCNAME="FILE:$cc" kinit -k -t "$RUN/gw.keytab" "easgate-svc@$REALM" ||
		die "kinit with the service keytab failed"
	KRB5_CONFIG="$RUN/krb5.conf" KRB5CCNAME="FILE:$cc" kvno -U alice -P HTTP/cas.corp.test >/dev/null ||
		die "kvno -U alice -P HTTP/cas.corp.test (S4U2Self + S4U2Proxy) failed"
	rm -f "$cc"
	log "MIT kvno: S4U2Self + S4U2Proxy for alice to HTTP/cas.corp.test works"
}

cmd_start() {
	need_root
	install -d -m 755 "$RUN" "$RUN/pids" "$RUN/logs"
	local t0=$SECONDS
	install_packages
	write_krb5_conf
	provision
	start_samba
	write_apache_conf
	start_apache
	write_env
	check
	log "ready in $((SECONDS - t0)) s: KDC 127.0.0.1:88, CAS stand-in http://127.0.0.1:$CAS_PORT; env in $RUN/env"
}

cmd_stop() {
	[ -d "$RUN/pids" ] || return 0
	stop_group apache
	stop_group samba
}

cmd_status() {
	local n
	for n in samba apache; do
		if pid=$(ours "$n"); then echo "$n: running (pid $pid)"; else echo "$n: stopped"; fi
	done
}

case "${1:-start}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) die "usage: setup.sh start|stop|status" ;;
esac
