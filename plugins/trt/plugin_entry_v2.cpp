// Entry points of IPluginV2 builds (TensorRT 8.5 / 8.6 / 9.x headers; TensorRT >= 10 builds use plugin_entry.cpp).
// Without linking libnvinfer (no REGISTER_TENSORRT_PLUGIN, whose registrar calls getPluginRegistry() and so needs
// libnvinfer at link time), the library registers its creators in the two ways those versions load plugins:
//
// * dlopen only (TensorRT 8.5 `trtexec --plugins`, 8.6 `--staticPlugins`, Python `ctypes.CDLL` after
//   `import tensorrt`): a load-time constructor finds the process's libnvinfer (already loaded: trtexec links it,
//   the tensorrt module loads it) with dlsym / dlopen(RTLD_NOLOAD), calls its getPluginRegistry() and registers
//   each creator that is not registered yet. SIAMATTN_TRT_NO_SELF_REGISTER=1 turns this off.
// * IPluginRegistry::loadLibrary (TensorRT 8.6 `--dynamicPlugins`, Python `registry.load_library`): it calls
//   setLoggerFinder and getPluginCreators, registers what the latter returns and fails if any of those names is
//   registered already, so getPluginCreators first takes back what the constructor registered.
#include <dlfcn.h>

#include <cstdlib>

#include "deform_conv_plugin_v2.h"
#include "deform_roi_pool_plugin_v2.h"
#include "plugin_common.h"

namespace {

constexpr int32_t kNbCreators = 3;

// Built on first use, so the load-time constructor never sees them unconstructed.
nvinfer1::IPluginCreator* const* creators() {
    // DeformConv: the standard ONNX op name; SiamAttnDeformConv: the same plugin under a custom-domain name.
    static siamattn::trt::DeformConvCreatorV2 deform_conv(SIAMATTN_DEFORM_CONV_NAME, SIAMATTN_DEFORM_CONV_VERSION);
    static siamattn::trt::DeformConvCreatorV2 custom_deform_conv(SIAMATTN_CUSTOM_DEFORM_CONV_NAME,
                                                                 SIAMATTN_CUSTOM_DEFORM_CONV_VERSION);
    static siamattn::trt::DeformRoIPoolCreatorV2 deform_roi_pool;
    static nvinfer1::IPluginCreator* const list[kNbCreators] = {&deform_conv, &custom_deform_conv, &deform_roi_pool};
    return list;
}

// Which creators the constructor registered, and where (handed back by getPluginCreators).
nvinfer1::IPluginRegistry* g_self_registry = nullptr;
bool g_self_registered[kNbCreators] = {};

#define SIAMATTN_STR2(x) #x
#define SIAMATTN_STR(x) SIAMATTN_STR2(x)

using GetRegistryFn = nvinfer1::IPluginRegistry* (*)();

// The running TensorRT's registry, or null when no libnvinfer is loaded in this process yet.
nvinfer1::IPluginRegistry* running_registry() {
    void* sym = dlsym(RTLD_DEFAULT, "getPluginRegistry");  // trtexec and C++ programs link libnvinfer globally
    // Python loads libnvinfer as a dependency of an extension module, RTLD_LOCAL: ask for the loaded copy by name.
    for (const char* lib : {"libnvinfer.so." SIAMATTN_STR(NV_TENSORRT_SONAME_MAJOR), "libnvinfer.so"}) {
        if (sym != nullptr) break;
        void* handle = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD);
        if (handle == nullptr) continue;
        sym = dlsym(handle, "getPluginRegistry");
        dlclose(handle);  // RTLD_NOLOAD took a reference on a library that stays loaded
    }
    return sym != nullptr ? reinterpret_cast<GetRegistryFn>(sym)() : nullptr;
}

__attribute__((constructor)) void self_register() {
    const char* off = std::getenv("SIAMATTN_TRT_NO_SELF_REGISTER");
    if (off != nullptr && off[0] != '\0' && off[0] != '0') return;
    siamattn::trt::guarded("siamattn plugin library load", 0, [&]() {
        nvinfer1::IPluginRegistry* registry = running_registry();
        if (registry == nullptr) return 0;
        for (int32_t i = 0; i < kNbCreators; ++i) {
            nvinfer1::IPluginCreator* c = creators()[i];
            if (registry->getPluginCreator(c->getPluginName(), c->getPluginVersion(), c->getPluginNamespace()) != nullptr)
                continue;  // another copy of the library (or a user) registered it first
            g_self_registered[i] = registry->registerCreator(*c, c->getPluginNamespace());
        }
        g_self_registry = registry;
        return 0;
    });
}

}  // namespace

#ifndef SIAMATTN_BUILD_INFO
#define SIAMATTN_BUILD_INFO "impl=tensorrt"
#endif

extern "C" {

#if SIAMATTN_TRT_HAS_LOGGER_FINDER
__attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
    siamattn::trt::set_logger_finder(finder);
}
#endif

__attribute__((visibility("default"))) nvinfer1::IPluginCreator* const* getPluginCreators(int32_t& nbCreators) {
    if (g_self_registry != nullptr) {
        for (int32_t i = 0; i < kNbCreators; ++i)
            if (g_self_registered[i]) g_self_registry->deregisterCreator(*creators()[i]);
        for (bool& r : g_self_registered) r = false;
        g_self_registry = nullptr;
    }
    nbCreators = kNbCreators;
    return creators();
}

// For 'siamattn plugins info' and the emulation driver: name/version/namespace list, the interface, build info.
__attribute__((visibility("default"))) const char* siamattn_trt_plugins_info(void) {
    return "plugins=" SIAMATTN_DEFORM_CONV_NAME "/" SIAMATTN_DEFORM_CONV_VERSION "/" SIAMATTN_PLUGIN_NAMESPACE
           "," SIAMATTN_CUSTOM_DEFORM_CONV_NAME "/" SIAMATTN_CUSTOM_DEFORM_CONV_VERSION "/" SIAMATTN_PLUGIN_NAMESPACE
           "," SIAMATTN_DEFORM_ROI_POOL_NAME "/" SIAMATTN_DEFORM_ROI_POOL_VERSION "/" SIAMATTN_PLUGIN_NAMESPACE
           " interface=IPluginV2DynamicExt " SIAMATTN_BUILD_INFO;
}

}  // extern "C"
