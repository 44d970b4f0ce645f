# Source this file (bash) to run the x86_64-pc-windows-gnu test binaries under Wine.
# It builds the bcryptprimitives.dll stand-in (see wine/bcryptprimitives.c), creates a
# Wine prefix inside target/ once, and points cargo's runner at wine64.
# Needs: Debian packages wine64 wine gcc-mingw-w64-x86-64.
_fm_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export WINEDEBUG=-all
export WINEPREFIX="$_fm_root/target/wine-prefix"
_fm_shim="$_fm_root/target/wine-shim"
mkdir -p "$_fm_shim"
if [ ! -f "$_fm_shim/bcryptprimitives.dll" ] || [ "$_fm_root/.ci/wine/bcryptprimitives.c" -nt "$_fm_shim/bcryptprimitives.dll" ]; then
  x86_64-w64-mingw32-gcc -O2 -shared -o "$_fm_shim/bcryptprimitives.dll" \
    "$_fm_root/.ci/wine/bcryptprimitives.c" "$_fm_root/.ci/wine/bcryptprimitives.def" -ladvapi32
fi
export WINEPATH="Z:${_fm_shim//\//\\}"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=/usr/lib/wine/wine64
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  /usr/lib/wine/wine64 wineboot -i >/dev/null 2>&1 || true
  wineserver -w
fi
unset _fm_root _fm_shim
