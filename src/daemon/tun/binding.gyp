# Built by `npm ci` through the root package's install script (src/daemon/tun/build.mjs runs node-gyp here).
# Headers come from the machine's Node (npm config `nodedir`), never downloaded.
{
  "targets": [
    {
      "target_name": "zks_tun",
      "sources": ["addon/tun.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"]
    }
  ]
}
