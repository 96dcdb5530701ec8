// The ConnectionWatch class of the data path's addon (connection-watch.cc), registered by datapath.cc's module init.
#pragma once
#include <napi.h>

namespace zks {
Napi::Function DefineConnectionWatch(Napi::Env env);
}
