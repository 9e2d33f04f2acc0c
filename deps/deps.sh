# deps.sh: the Makefile's side of deps/debian.txt (the format is described
# there). Plain sh and its builtins, plus id: it must run, and say what is
# missing, on a machine that has nothing else.
#
#   sh deps/deps.sh packages   print the packages, one line
#   sh deps/deps.sh check      every item present, make test can run; else name
#                              what is missing and `make deps`, and exit 1
#   sh deps/deps.sh install    as root: apt-get install the packages not yet
#                              installed; else print the sudo line and exit 1
#
# GO (the Makefile's $(GO)) is checked too: Go is the one requirement not in
# the list.

set -euf
list=${0%/*}/debian.txt
python=/usr/bin/python3
aptline="apt-get install -y --no-install-recommends"

# each calls "$1" with the package and its items ("prometheus" "prometheus promtool").
each() {
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%%#*}
		case $line in
		*:*) "$1" "${line%%:*}" "${line#*:}" ;;
		esac
	done <"$list"
}

cmd_packages() {
	pkgs=
	add() { pkgs="$pkgs${pkgs:+ }$1"; }
	each add
	echo "$pkgs"
}

# present tells whether one item is there.
present() {
	case $1 in
	python3:*) [ -x "$python" ] && "$python" -c 'import importlib.util, sys
sys.exit(importlib.util.find_spec(sys.argv[1]) is None)' "${1#python3:}" 2>/dev/null ;;
	/*) [ -e "$1" ] ;;
	*) command -v "$1" >/dev/null 2>&1 ;;
	esac
}

cmd_check() {
	missing=
	miss() { missing="$missing  $1
"; }
	checkpkg() {
		for item in $2; do
			if ! present "$item"; then
				case $item in
				python3:*) miss "python3 module ${item#python3:} (for $python): Debian package $1" ;;
				*) miss "$item: Debian package $1" ;;
				esac
			fi
		done
	}
	each checkpkg
	missing_pkgs=$missing
	if ! command -v "${GO:-go}" >/dev/null 2>&1; then
		miss "${GO:-go}: Go 1.26 or later, from https://go.dev/dl/ (make looks in /usr/local/go/bin too)"
	fi
	if [ "$(id -u)" != 0 ]; then
		miss "root: make test mounts filesystems (tmpfs, bind, FUSE) and builds images"
	fi
	if [ ! -c /dev/fuse ]; then
		miss "/dev/fuse: the FUSE tests need it (modprobe fuse; in a container, pass the device in)"
	fi
	if [ -z "$missing" ]; then
		echo "deps: everything in $list is here"
		return 0
	fi
	{
		echo "make test cannot run here; missing:"
		printf '%s' "$missing"
		if [ -n "$missing_pkgs" ]; then
			echo "Install the packages with: sudo make deps"
			echo "  (that is: sudo $aptline $(cmd_packages))"
		fi
		echo "Then run the tests as root: sudo make deps test"
	} >&2
	return 1
}

cmd_install() {
	pkgs=$(cmd_packages)
	if [ "$(id -u)" != 0 ]; then
		{
			echo "make deps installs Debian packages and needs root. Run:"
			echo "sudo $aptline $pkgs"
			echo "(or: sudo make deps)"
		} >&2
		return 1
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "make deps: no apt-get here (Debian and Ubuntu only); install the equivalents of: $pkgs" >&2
		return 1
	fi
	# Only what is not installed yet: on a ready machine make deps needs
	# no network and takes a moment.
	todo=
	for p in $pkgs; do
		case $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) in
		ii*) ;;
		*) todo="$todo${todo:+ }$p" ;;
		esac
	done
	if [ -z "$todo" ]; then
		echo "deps: every package in $list is installed"
		return 0
	fi
	export DEBIAN_FRONTEND=noninteractive
	echo "+ $aptline $todo"
	# A fresh machine (a container image) may have no package lists yet, an
	# old one stale lists: update and try again.
	# shellcheck disable=SC2086 # one word a package
	$aptline $todo || { apt-get update && $aptline $todo; }
}

case ${1-} in
packages | check | install) "cmd_$1" ;;
*)
	echo "usage: sh deps/deps.sh packages|check|install" >&2
	exit 2
	;;
esac
