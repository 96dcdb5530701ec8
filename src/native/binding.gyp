# The native addons, built by `npm ci` through the root package's install script
# (src/native/build.mjs runs node-gyp here). Headers come from the machine's Node, never downloaded.
{
  "targets": [
    {
      "target_name": "zks_icmp",
      "sources": ["addon/icmp.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "zks_datapath",
      "sources": ["addon/datapath.cc", "addon/udp.cc", "addon/udp-send.cc", "addon/connection-watch.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"]
    }
  ]
}
