#!/usr/bin/env bash
# Run every kiln test on a fresh Debian 12 machine: installs the real tools the tests start
# (registry, skopeo, umoci, runc, busybox, toolchains), then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use; installed only when missing.
packages=(
  skopeo umoci runc busybox-static uidmap       # read/validate/run what kiln writes
  docker-registry apache2-utils openssl         # real registries (basic auth, TLS)
  pigz                                          # export benchmark peer
  gpgv                                          # oracle for InRelease signature checks
  maven openjdk-17-jdk-headless                 # the Java buildpack's toolchain
  maven-debian-helper maven-repo-helper         # Debian's Maven repository, served as a
  libmaven-compiler-plugin-java libmaven-jar-plugin-java libmaven-resources-plugin-java
  libsurefire-java libmaven-install-plugin-java libmaven-clean-plugin-java
  libmaven-dependency-plugin-java junit4        # local "company mirror" in the Java tests
  libcommons-lang3-java libcommons-io-java      # runtime dependencies of the Java fixtures
)
# The Node buildpack runs the machine's node and npm; Debian's are used when the machine has none.
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cargo test "$@"
