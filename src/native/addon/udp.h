// The UdpSocket class of the data path's addon (udp.cc), registered by datapath.cc's module init.
#pragma once
#include <napi.h>

namespace zks {
Napi::Function DefineUdpSocket(Napi::Env env);
}
