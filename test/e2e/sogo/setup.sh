#!/usr/bin/env bash
# setup.sh: a real SOGo ActiveSync server on loopback for easgate's end-to-end tests.
#
#   setup.sh [start]        install (if missing), configure, seed and start everything
#   setup.sh stop           stop exactly the processes `start` started
#   setup.sh status         show what runs and whether SOGo answers OPTIONS
#   setup.sh seed USER N    save N more RFC 5322 messages into USER's INBOX
#   setup.sh deliver USER [FILE]   save one message (FILE or a generated one) into USER's INBOX
#
# Everything lives under one run directory, $EASGATE_SOGO_DIR (default /tmp/easgate-sogo):
#   pg/         private PostgreSQL cluster (127.0.0.1:$PG_PORT, socket in pg/sock) with the SOGo
#               database and the sogo_users table SOGo authenticates against
#   dovecot/    Dovecot 2.3 with a private config (IMAP on 127.0.0.1:$IMAP_PORT, passwd-file passdb)
#   mail/       the users' maildirs, owned by the dedicated mail user $MAIL_USER
#   memcached/  memcached on 127.0.0.1:$MEMCACHED_PORT
#   sogo/       sogod (as user sogo, 127.0.0.1:$SOGO_PORT) log, pid file and HOME
#   nginx/      nginx on 127.0.0.1:$HTTP_PORT in front of sogod (sogod closes every connection)
#   pids/       "pid starttime" of every process this script started; `stop` kills only those
#   env         connection facts for the Go tests (KEY=VALUE lines)
#
# /etc/sogo/sogo.conf is the one file outside the run directory: sogod reads no other. The
# original is kept once as /etc/sogo/sogo.conf.easgate-orig.
#
# Needs root (package install, users, daemons as their own users). Every wait is bounded.
set -euo pipefail

RUN=${EASGATE_SOGO_DIR:-/tmp/easgate-sogo}
PG_PORT=${EASGATE_SOGO_PG_PORT:-25432} # below the ephemeral port range (32768-60999), so a client socket can never hold it
IMAP_PORT=${EASGATE_SOGO_IMAP_PORT:-11143}
MEMCACHED_PORT=${EASGATE_SOGO_MEMCACHED_PORT:-11212}
SOGO_PORT=${EASGATE_SOGO_PORT:-20000}
HTTP_PORT=${EASGATE_SOGO_HTTP_PORT:-20080}
SEED=${EASGATE_SOGO_SEED:-25}
WORKERS=${EASGATE_SOGO_WORKERS:-12}
MAIL_DOMAIN=easgate.test
MAIL_USER=easgate-mail
DB_PASSWORD=sogo-db-secret
# Test users: name and password. Each Go test flow owns one user so flows can run in parallel.
USERS=(alice bob carol dave erin frank grace heidi ivan)
password_of() { printf '%s-Pass-7x' "$1"; }

PACKAGES=(sogo sogo-activesync dovecot-imapd memcached nginx-light postgresql-15 curl)
SOGO_CONF=/etc/sogo/sogo.conf

log() { printf 'setup.sh: %s\n' "$*" >&2; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (installs packages and starts daemons as their own users)"; }

# ---------------------------------------------------------------- processes we started

# starttime (field 22 of /proc/PID/stat) tells a reused PID from ours.
proc_starttime() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }            # drop "pid (comm) "; comm may contain spaces
	# shellcheck disable=SC2086
	set -- $stat
	echo "${20}"                 # field 22 overall = 20th after pid and comm
}

record_pid() { # name pid
	local st
	st=$(proc_starttime "$2") || die "$1 (pid $2) exited right after start; see its log under $RUN"
	echo "$2 $st" >"$RUN/pids/$1"
}

# ours NAME: prints the PID when the recorded process is still the one we started.
ours() {
	local f="$RUN/pids/$1" pid st now
	[ -f "$f" ] || return 1
	read -r pid st <"$f" || return 1
	now=$(proc_starttime "$pid") || return 1
	[ "$now" = "$st" ] || return 1
	echo "$pid"
}

# start_bg NAME CMD...: starts CMD in its own session (so its process group is exactly
# the daemon and its children) and records its PID.
start_bg() {
	local name=$1
	shift
	setsid "$@" >>"$RUN/logs/$name.out" 2>&1 </dev/null &
	local pid=$!
	sleep 0.3
	record_pid "$name" "$pid"
}

# descendants PID: "pid starttime" of every live descendant of PID (sogod's workers and
# postgres's backends call setsid, so a process-group signal does not reach them).
descendants() {
	local -A children=()
	local pid ppid queue=("$1") next=() p st
	local f stat rest
	for f in /proc/[0-9]*/stat; do
		{ read -r stat <"$f"; } 2>/dev/null || continue
		pid=${stat%% *}
		rest=${stat##*) }    # "S PPID ..."
		rest=${rest#* }
		ppid=${rest%% *}
		children[$ppid]+="$pid "
	done
	while [ ${#queue[@]} -gt 0 ]; do
		next=()
		for p in "${queue[@]}"; do
			for pid in ${children[$p]:-}; do
				st=$(proc_starttime "$pid") && echo "$pid $st"
				next+=("$pid")
			done
		done
		queue=("${next[@]}")
	done
}

# stop_group NAME GRACE: SIGTERM to the process we started and its process group, SIGKILL to
# it, its group and every descendant it had (checked by start time) after GRACE seconds.
stop_group() {
	local name=$1 grace=$2 pid i kids
	if ! pid=$(ours "$name"); then
		rm -f "$RUN/pids/$name"
		return 0
	fi
	kids=$(descendants "$pid")
	log "stopping $name (pid $pid)"
	kill -TERM -- "-$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 10; i++)); do
		ours "$name" >/dev/null || break
		sleep 0.1
	done
	if ours "$name" >/dev/null; then
		log "$name did not stop within ${grace}s: SIGKILL"
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	# A killed leader leaves its group id behind; reap any member or descendant that outlived it.
	kill -KILL -- "-$pid" 2>/dev/null || true
	local kpid kst
	while read -r kpid kst; do
		[ -n "$kpid" ] || continue
		if [ "$(proc_starttime "$kpid" 2>/dev/null)" = "$kst" ]; then
			kill -KILL "$kpid" 2>/dev/null || true
		fi
	done <<<"$kids"
	rm -f "$RUN/pids/$name"
}

wait_tcp() { # name port seconds
	local i
	for ((i = 0; i < $3 * 5; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
		sleep 0.2
	done
	die "$1 is not listening on 127.0.0.1:$2 after $3 s; see $RUN/logs/ and the $1 log"
}

# ---------------------------------------------------------------- install

install_packages() {
	local need=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
	done
	[ ${#need[@]} -eq 0 ] && return 0
	log "installing ${need[*]}"
	# Debian packages start their daemons on install; a policy-rc.d exiting 101 forbids that.
	local had_policy=0
	if [ -e /usr/sbin/policy-rc.d ]; then
		had_policy=1
		cp -p /usr/sbin/policy-rc.d "$RUN/policy-rc.d.orig"
	fi
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	local rc=0
	{
		DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
	} || rc=$?
	if [ $had_policy -eq 1 ]; then
		mv "$RUN/policy-rc.d.orig" /usr/sbin/policy-rc.d
	else
		rm -f /usr/sbin/policy-rc.d
	fi
	[ $rc -eq 0 ] || die "apt-get install ${need[*]} failed (exit $rc)"
}

pg_bin() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	[ -n "$d" ] && [ -x "$d/pg_ctl" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
	echo "$d"
}

ensure_mail_user() {
	if ! getent passwd "$MAIL_USER" >/dev/null; then
		log "creating system user $MAIL_USER for the maildirs"
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$MAIL_USER"
	fi
}

# ---------------------------------------------------------------- PostgreSQL

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

psql_admin() { # db, SQL on stdin
	as_postgres "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN/pg/sock" -p "$PG_PORT" -U postgres -d "$1"
}

start_postgres() {
	PGBIN=$(pg_bin)
	install -d -o postgres -g postgres -m 700 "$RUN/pg/data"
	install -d -o postgres -g postgres -m 755 "$RUN/pg/sock"
	if [ ! -f "$RUN/pg/data/PG_VERSION" ]; then
		log "initdb $RUN/pg/data"
		as_postgres "$PGBIN/initdb" -D "$RUN/pg/data" -U postgres -E UTF8 --no-locale \
			--auth-local=trust --auth-host=scram-sha-256 >"$RUN/logs/initdb.out" 2>&1 ||
			die "initdb failed; see $RUN/logs/initdb.out"
	fi
	if as_postgres "$PGBIN/pg_ctl" -D "$RUN/pg/data" status >/dev/null 2>&1; then
		log "postgres already running"
	else
		log "starting postgres on 127.0.0.1:$PG_PORT"
		install -o postgres -g postgres -m 640 /dev/null "$RUN/pg/postgres.log"
		as_postgres "$PGBIN/pg_ctl" -D "$RUN/pg/data" -l "$RUN/pg/postgres.log" -w -t 60 \
			-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $RUN/pg/sock -c max_connections=100" \
			start >"$RUN/logs/pg_ctl.out" 2>&1 || die "postgres did not start; see $RUN/pg/postgres.log"
		touch "$RUN/pids/postgres.started"
	fi
	psql_admin postgres <<-SQL
		DO \$\$ BEGIN
		  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sogo') THEN
		    CREATE ROLE sogo LOGIN PASSWORD '$DB_PASSWORD';
		  END IF;
		END \$\$;
		SELECT 'CREATE DATABASE sogo OWNER sogo' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'sogo')\gexec
	SQL
	{
		cat <<-SQL
			SET client_min_messages = warning;
			CREATE TABLE IF NOT EXISTS sogo_users (
			  c_uid      varchar(128) PRIMARY KEY,
			  c_name     varchar(128) NOT NULL,
			  c_password varchar(128) NOT NULL,
			  c_cn       varchar(128),
			  mail       varchar(128)
			);
			ALTER TABLE sogo_users OWNER TO sogo;
		SQL
		local u
		for u in "${USERS[@]}"; do
			# md5 hex of the password; SOGo's userPasswordAlgorithm = md5.
			printf "INSERT INTO sogo_users VALUES ('%s', '%s', md5('%s'), '%s', '%s@%s')\n" \
				"$u" "$u" "$(password_of "$u")" "${u^} Test" "$u" "$MAIL_DOMAIN"
			printf "  ON CONFLICT (c_uid) DO UPDATE SET c_password = EXCLUDED.c_password, mail = EXCLUDED.mail;\n"
		done
	} | psql_admin sogo
}

stop_postgres() {
	[ -f "$RUN/pids/postgres.started" ] || return 0
	PGBIN=$(pg_bin)
	if as_postgres "$PGBIN/pg_ctl" -D "$RUN/pg/data" status >/dev/null 2>&1; then
		log "stopping postgres"
		as_postgres "$PGBIN/pg_ctl" -D "$RUN/pg/data" -m fast -w -t 30 stop >/dev/null ||
			log "pg_ctl stop failed; see $RUN/pg/postgres.log"
	fi
	rm -f "$RUN/pids/postgres.started"
}

# ---------------------------------------------------------------- Dovecot

DOVECOT_CONF() { echo "$RUN/dovecot/dovecot.conf"; }

write_dovecot_conf() {
	install -d -m 755 "$RUN/dovecot" "$RUN/dovecot/state"
	install -d -m 755 "$RUN/dovecot/run"
	install -d -o "$MAIL_USER" -g "$MAIL_USER" -m 750 "$RUN/mail"
	local u
	: >"$RUN/dovecot/passwd.new"
	for u in "${USERS[@]}"; do
		printf '%s:{PLAIN}%s::::::\n' "$u" "$(password_of "$u")" >>"$RUN/dovecot/passwd.new"
	done
	chown root:dovecot "$RUN/dovecot/passwd.new"
	chmod 640 "$RUN/dovecot/passwd.new"
	mv "$RUN/dovecot/passwd.new" "$RUN/dovecot/passwd"
	cat >"$(DOVECOT_CONF)" <<-EOF
		# Written by test/e2e/sogo/setup.sh. Dovecot 2.3 syntax.
		instance_name = easgate-sogo
		protocols = imap
		listen = 127.0.0.1
		base_dir = $RUN/dovecot/run
		state_dir = $RUN/dovecot/state
		log_path = $RUN/dovecot/dovecot.log
		ssl = no
		disable_plaintext_auth = no
		auth_mechanisms = plain login
		mail_location = maildir:$RUN/mail/%u/Maildir
		mail_uid = $MAIL_USER
		mail_gid = $MAIL_USER
		first_valid_uid = 1
		first_valid_gid = 1
		passdb {
		  driver = passwd-file
		  args = scheme=PLAIN $RUN/dovecot/passwd
		}
		userdb {
		  driver = static
		  args = uid=$MAIL_USER gid=$MAIL_USER home=$RUN/mail/%u
		}
		namespace inbox {
		  inbox = yes
		  separator = /
		  mailbox Sent {
		    auto = create
		    special_use = \\Sent
		  }
		  mailbox Drafts {
		    auto = create
		    special_use = \\Drafts
		  }
		  mailbox Trash {
		    auto = create
		    special_use = \\Trash
		  }
		}
		protocol imap {
		  mail_max_userip_connections = 200
		}
		service imap-login {
		  inet_listener imap {
		    address = 127.0.0.1
		    port = $IMAP_PORT
		  }
		  inet_listener imaps {
		    port = 0
		  }
		}
		service pop3-login {
		  inet_listener pop3 {
		    port = 0
		  }
		  inet_listener pop3s {
		    port = 0
		  }
		}
		service lmtp {
		  unix_listener lmtp {
		    mode = 0600
		  }
		}
	EOF
}

doveadm_() { doveadm -c "$(DOVECOT_CONF)" "$@"; }

start_dovecot() {
	write_dovecot_conf
	if ours dovecot >/dev/null; then
		log "dovecot already running; reloading its config"
		doveadm_ reload >/dev/null 2>&1 || true
		return 0
	fi
	log "starting dovecot on 127.0.0.1:$IMAP_PORT"
	start_bg dovecot dovecot -c "$(DOVECOT_CONF)" -F
	wait_tcp dovecot "$IMAP_PORT" 30
}

inbox_count() { # user
	doveadm_ -f flow mailbox status -u "$1" messages INBOX 2>/dev/null | sed -n 's/.*messages=\([0-9]*\).*/\1/p'
}

# message USER SEQ: one RFC 5322 message; every fifth is multipart/alternative with HTML.
message() {
	local to="$1@$MAIL_DOMAIN" n=$2 id
	id="$(date +%s%N).$n.$$"
	printf 'Return-Path: <sender%d@example.org>\r\n' "$((n % 3))"
	printf 'From: Sender %d <sender%d@example.org>\r\n' "$((n % 3))" "$((n % 3))"
	printf 'To: %s <%s>\r\n' "${1^}" "$to"
	printf 'Subject: easgate e2e message %d for %s\r\n' "$n" "$1"
	printf 'Date: %s\r\n' "$(LC_ALL=C date -R)"
	printf 'Message-ID: <%s@easgate.test>\r\n' "$id"
	printf 'MIME-Version: 1.0\r\n'
	if ((n % 5 == 0)); then
		printf 'Content-Type: multipart/alternative; boundary="b-%s"\r\n\r\n' "$id"
		printf -- '--b-%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n' "$id"
		printf 'Message %d, plain part.\r\n\r\n' "$n"
		printf -- '--b-%s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n' "$id"
		printf '<html><body><p>Message <b>%d</b>, HTML part.</p></body></html>\r\n\r\n' "$n"
		printf -- '--b-%s--\r\n' "$id"
	else
		printf 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
		printf 'Hello %s,\r\n\r\nthis is seeded message number %d.\r\nGr\xc3\xbc\xc3\x9fe, easgate\r\n' "$1" "$n"
	fi
}

# condstore USER: Dovecot tracks modification sequences for a mailbox only after a client
# asked for them once; SOGo's mail Sync stays empty without them.
condstore() {
	local u=$1 out
	out=$(curl -sS --max-time 15 -u "$u:$(password_of "$u")" \
		--url "imap://127.0.0.1:$IMAP_PORT/" -X 'SELECT "INBOX" (CONDSTORE)' -v 2>&1) ||
		die "IMAP SELECT (CONDSTORE) for $u failed: $(echo "$out" | grep -E '^< |curl:' | tail -3)"
	echo "$out" | grep -q 'HIGHESTMODSEQ' || die "IMAP SELECT (CONDSTORE) for $u gave no HIGHESTMODSEQ"
}

seed() { # user count
	local u=$1 n=$2 have i
	have=$(inbox_count "$u")
	have=${have:-0}
	for ((i = have + 1; i <= have + n; i++)); do
		message "$u" "$i" | doveadm_ save -u "$u" -m INBOX || die "doveadm save for $u failed"
	done
	condstore "$u"
	log "$u: INBOX has $(inbox_count "$u") messages"
}

seed_all() {
	local u have
	for u in "${USERS[@]}"; do
		have=$(inbox_count "$u")
		have=${have:-0}
		if ((have < SEED)); then
			seed "$u" $((SEED - have))
		else
			condstore "$u"
		fi
	done
}

# ---------------------------------------------------------------- memcached, SOGo, nginx

start_memcached() {
	if ours memcached >/dev/null; then return 0; fi
	log "starting memcached on 127.0.0.1:$MEMCACHED_PORT"
	start_bg memcached memcached -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -u memcache -m 64 -c 256
	wait_tcp memcached "$MEMCACHED_PORT" 15
}

write_sogo_conf() {
	[ -d /etc/sogo ] || die "/etc/sogo missing: is the sogo package installed?"
	if [ -f "$SOGO_CONF" ] && [ ! -f "$SOGO_CONF.easgate-orig" ] && ! grep -q 'easgate e2e' "$SOGO_CONF"; then
		cp -p "$SOGO_CONF" "$SOGO_CONF.easgate-orig"
	fi
	local db="postgresql://sogo:$DB_PASSWORD@127.0.0.1:$PG_PORT/sogo"
	cat >"$SOGO_CONF.new" <<-EOF
		/* Written by easgate's test/e2e/sogo/setup.sh (easgate e2e); original in sogo.conf.easgate-orig. */
		{
		  WOPort = "127.0.0.1:$SOGO_PORT";
		  WOWorkersCount = $WORKERS;
		  WOWatchDogRequestTimeout = 65;
		  WOListenQueueSize = 64;
		  WOLogFile = "$RUN/sogo/sogo.log";
		  WOPidFile = "$RUN/sogo/sogo.pid";

		  SOGoProfileURL = "$db/sogo_user_profile";
		  OCSFolderInfoURL = "$db/sogo_folder_info";
		  OCSSessionsFolderURL = "$db/sogo_sessions_folder";
		  OCSEMailAlarmsFolderURL = "$db/sogo_alarms_folder";
		  OCSStoreURL = "$db/sogo_store";
		  OCSAclURL = "$db/sogo_acl";
		  OCSCacheFolderURL = "$db/sogo_cache_folder";

		  SOGoUserSources = (
		    {
		      type = sql;
		      id = easgate_users;
		      viewURL = "$db/sogo_users";
		      canAuthenticate = YES;
		      isAddressBook = NO;
		      userPasswordAlgorithm = md5;
		    }
		  );

		  SOGoIMAPServer = "imap://127.0.0.1:$IMAP_PORT";
		  SOGoMailDomain = $MAIL_DOMAIN;
		  SOGoMailingMechanism = smtp;
		  SOGoSMTPServer = "smtp://127.0.0.1:25";
		  SOGoMemcachedHost = "127.0.0.1:$MEMCACHED_PORT";
		  SOGoSentFolderName = Sent;
		  SOGoTrashFolderName = Trash;
		  SOGoDraftsFolderName = Drafts;
		  SOGoTimeZone = UTC;
		  SOGoLanguage = English;
		  SOGoAppointmentSendEMailNotifications = NO;
		  SOGoVacationEnabled = NO;
		  SOGoForwardEnabled = NO;
		  SOGoSieveScriptsEnabled = NO;

		  /* ActiveSync: every held Ping holds one worker; long polls up to 59 minutes,
		     changes noticed within 5 s. */
		  SOGoMaximumPingInterval = 3540;
		  SOGoMaximumSyncInterval = 3540;
		  SOGoInternalSyncInterval = 5;
		  SOGoEASDebugEnabled = NO;
		}
	EOF
	chown root:sogo "$SOGO_CONF.new"
	chmod 640 "$SOGO_CONF.new"
	mv "$SOGO_CONF.new" "$SOGO_CONF"
}

start_sogo() {
	write_sogo_conf
	if ours sogod >/dev/null; then
		log "sogod already running (config changes need: setup.sh stop && setup.sh start)"
		return 0
	fi
	install -d -o sogo -g sogo -m 755 "$RUN/sogo" "$RUN/sogo/home"
	log "starting sogod on 127.0.0.1:$SOGO_PORT ($WORKERS workers)"
	# -WONoDetach keeps the parent in front so its PID is the one recorded; the watchdog
	# parent forks the workers into the same process group.
	start_bg sogod setpriv --reuid=sogo --regid=sogo --init-groups -- \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$RUN/sogo/home" LANG=C.UTF-8 \
		/usr/sbin/sogod -WONoDetach YES -WOUseWatchDog YES -WOWorkersCount "$WORKERS" \
		-WOPort "127.0.0.1:$SOGO_PORT" -WOPidFile "$RUN/sogo/sogo.pid" -WOLogFile "$RUN/sogo/sogo.log"
	wait_tcp sogod "$SOGO_PORT" 60
}

start_nginx() {
	install -d -m 755 "$RUN/nginx" "$RUN/nginx/tmp"
	local user=www-data
	getent passwd www-data >/dev/null || user=nobody
	cat >"$RUN/nginx/nginx.conf" <<-EOF
		# Written by test/e2e/sogo/setup.sh: nginx in front of sogod, as SOGo is deployed.
		daemon off;
		user $user;
		worker_processes 1;
		pid $RUN/nginx/nginx.pid;
		error_log $RUN/nginx/error.log info;
		events { worker_connections 512; }
		http {
		  access_log $RUN/nginx/access.log;
		  client_body_temp_path $RUN/nginx/tmp/body;
		  proxy_temp_path $RUN/nginx/tmp/proxy;
		  fastcgi_temp_path $RUN/nginx/tmp/fastcgi;
		  uwsgi_temp_path $RUN/nginx/tmp/uwsgi;
		  scgi_temp_path $RUN/nginx/tmp/scgi;
		  keepalive_timeout 3600s;
		  server {
		    listen 127.0.0.1:$HTTP_PORT;
		    client_max_body_size 64m;
		    # Exchange serves this page without authentication for load balancers (easgate's
		    # health check probes it). SOGo has none and answers 401 to everything under
		    # Microsoft-Server-ActiveSync, so it maps to sogod's login page: served without
		    # authentication, and failing when sogod is down.
		    location = /Microsoft-Server-ActiveSync/healthcheck.htm {
		      proxy_pass http://127.0.0.1:$SOGO_PORT/SOGo/;
		      proxy_connect_timeout 5s;
		      proxy_read_timeout 10s;
		    }
		    location /Microsoft-Server-ActiveSync {
		      proxy_pass http://127.0.0.1:$SOGO_PORT/SOGo/Microsoft-Server-ActiveSync;
		      proxy_read_timeout 3600s;
		      proxy_send_timeout 3600s;
		      proxy_connect_timeout 10s;
		      proxy_buffering off;
		      proxy_set_header Host \$host;
		      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
		    }
		  }
		}
	EOF
	nginx -t -q -p "$RUN/nginx" -e "$RUN/nginx/error.log" -c "$RUN/nginx/nginx.conf" ||
		die "nginx rejected $RUN/nginx/nginx.conf"
	local pid
	if pid=$(ours nginx); then
		log "nginx already running; reloading its config"
		kill -HUP "$pid"
		return 0
	fi
	log "starting nginx on 127.0.0.1:$HTTP_PORT"
	start_bg nginx nginx -p "$RUN/nginx" -e "$RUN/nginx/error.log" -c "$RUN/nginx/nginx.conf"
	wait_tcp nginx "$HTTP_PORT" 15
}

eas_url() { echo "http://127.0.0.1:$HTTP_PORT/Microsoft-Server-ActiveSync"; }

# OPTIONS with credentials until SOGo answers 200 with its version list.
wait_sogo() {
	local i code u=${USERS[0]}
	for ((i = 0; i < 90; i++)); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X OPTIONS \
			-u "$u:$(password_of "$u")" "$(eas_url)" || true)
		if [ "$code" = 200 ]; then
			log "SOGo answers OPTIONS at $(eas_url)"
			return 0
		fi
		sleep 1
	done
	die "SOGo did not answer OPTIONS with 200 within 90 s (last HTTP $code); see $RUN/sogo/sogo.log"
}

write_env() {
	local u
	{
		echo "EASGATE_SOGO_URL=$(eas_url)"
		echo "EASGATE_SOGO_UPSTREAM=http://127.0.0.1:$HTTP_PORT"
		echo "EASGATE_SOGO_SOGOD=http://127.0.0.1:$SOGO_PORT/SOGo/Microsoft-Server-ActiveSync"
		echo "EASGATE_SOGO_USERS=${USERS[*]}"
		for u in "${USERS[@]}"; do echo "EASGATE_SOGO_PASSWORD_$u=$(password_of "$u")"; done
		echo "EASGATE_SOGO_MAIL_DOMAIN=$MAIL_DOMAIN"
		echo "EASGATE_SOGO_DOVEADM=$(command -v doveadm)"
		echo "EASGATE_SOGO_DOVECOT_CONF=$(DOVECOT_CONF)"
		echo "EASGATE_SOGO_SEED=$SEED"
		echo "EASGATE_SOGO_ACCESS_LOG=$RUN/nginx/access.log"
	} >"$RUN/env.new"
	chmod 600 "$RUN/env.new"
	mv "$RUN/env.new" "$RUN/env"
}

# ---------------------------------------------------------------- commands

prepare_dirs() {
	install -d -m 755 "$RUN"
	install -d -m 700 "$RUN/pids"
	install -d -m 755 "$RUN/logs"
}

cmd_start() {
	need_root
	prepare_dirs
	install_packages
	ensure_mail_user
	start_postgres
	start_dovecot
	seed_all
	start_memcached
	start_sogo
	start_nginx
	wait_sogo
	write_env
	log "ready; connection facts in $RUN/env"
}

cmd_stop() {
	need_root
	[ -d "$RUN/pids" ] || { log "nothing started under $RUN"; return 0; }
	stop_group nginx 5
	stop_group sogod 5
	stop_group memcached 5
	stop_group dovecot 10
	stop_postgres
	log "stopped"
}

cmd_status() {
	local name pid rc=0
	for name in postgres dovecot memcached sogod nginx; do
		if [ "$name" = postgres ]; then
			if [ -f "$RUN/pg/data/postmaster.pid" ] && [ -f "$RUN/pids/postgres.started" ]; then
				printf '%-10s running (pid %s)\n' postgres "$(head -1 "$RUN/pg/data/postmaster.pid")"
			else
				printf '%-10s stopped\n' postgres
				rc=1
			fi
			continue
		fi
		if pid=$(ours "$name"); then
			printf '%-10s running (pid %s)\n' "$name" "$pid"
		else
			printf '%-10s stopped\n' "$name"
			rc=1
		fi
	done
	local u=${USERS[0]}
	printf '%-10s HTTP %s\n' OPTIONS "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X OPTIONS \
		-u "$u:$(password_of "$u")" "$(eas_url)" || true)"
	return $rc
}

valid_user() {
	local u
	for u in "${USERS[@]}"; do [ "$u" = "$1" ] && return 0; done
	die "unknown user '$1' (users: ${USERS[*]})"
}

case "${1:-start}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
seed)
	[ $# -eq 3 ] && [[ $3 =~ ^[0-9]+$ ]] || die "usage: setup.sh seed USER N"
	need_root
	valid_user "$2"
	seed "$2" "$3"
	;;
deliver)
	[ $# -ge 2 ] || die "usage: setup.sh deliver USER [FILE]"
	need_root
	valid_user "$2"
	if [ $# -ge 3 ]; then
		doveadm_ save -u "$2" -m INBOX <"$3"
	else
		message "$2" "$(($(inbox_count "$2") + 1))" | doveadm_ save -u "$2" -m INBOX
	fi
	log "$2: INBOX has $(inbox_count "$2") messages"
	;;
-h | --help | help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "unknown command '$1' (start|stop|status|seed USER N|deliver USER [FILE])" ;;
esac
