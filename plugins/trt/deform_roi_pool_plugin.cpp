#include "deform_roi_pool_plugin.h"

#include <vector>

namespace siamattn {
namespace trt {

using nvinfer1::DataType;

nvinfer1::IPluginCapability* DeformRoIPoolPlugin::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept {
    return capability_of(this, type);
}

nvinfer1::IPluginV3* DeformRoIPoolPlugin::clone() noexcept {
    return guarded("DeformRoIPoolPlugin::clone", kNoPlugin, [&]() -> nvinfer1::IPluginV3* {
        return new DeformRoIPoolPlugin(attrs_);
    });
}

int32_t DeformRoIPoolPlugin::configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nbInputs,
                                             const nvinfer1::DynamicPluginTensorDesc*, int32_t nbOutputs) noexcept {
    return guarded("DeformRoIPoolPlugin::configurePlugin", int32_t{-1}, [&]() -> int32_t {
        if (nbOutputs != 1 || nbInputs < 2 || nbInputs > 3) return -1;
        nvinfer1::Dims dims[3];
        for (int32_t i = 0; i < nbInputs; ++i) dims[i] = in[i].max;
        siamattn_deform_roi_pool_params p;
        return deform_roi_pool_params(attrs_, dims, nbInputs, p) ? 0 : -1;
    });
}

int32_t DeformRoIPoolPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, const DataType* inputTypes,
                                                int32_t nbInputs) const noexcept {
    return guarded("DeformRoIPoolPlugin::getOutputDataTypes", int32_t{-1}, [&]() -> int32_t {
        if (nbOutputs != 1 || nbInputs < 1) return -1;
        outputTypes[0] = inputTypes[0];
        return 0;
    });
}

int32_t DeformRoIPoolPlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nbInputs,
                                             const nvinfer1::DimsExprs*, int32_t, nvinfer1::DimsExprs* outputs,
                                             int32_t nbOutputs, nvinfer1::IExprBuilder& eb) noexcept {
    return guarded("DeformRoIPoolPlugin::getOutputShapes", int32_t{-1}, [&]() -> int32_t {
        if (nbOutputs != 1) return -1;
        return deform_roi_pool_output_dims(attrs_, inputs, nbInputs, eb, outputs[0]) ? 0 : -1;
    });
}

bool DeformRoIPoolPlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* inOut,
                                                    int32_t nbInputs, int32_t nbOutputs) noexcept {
    return guarded("DeformRoIPoolPlugin::supportsFormatCombination", false, [&]() -> bool {
        if (pos < 0 || pos >= nbInputs + nbOutputs) return false;
        return deform_roi_pool_format_ok(pos, inOut[pos].desc.type, inOut[pos].desc.format, inOut[0].desc.type);
    });
}

int32_t DeformRoIPoolPlugin::onShapeChange(const nvinfer1::PluginTensorDesc* in, int32_t nbInputs,
                                           const nvinfer1::PluginTensorDesc*, int32_t nbOutputs) noexcept {
    return guarded("DeformRoIPoolPlugin::onShapeChange", int32_t{-1}, [&]() -> int32_t {
        shapes_ok_ = false;
        if (nbOutputs != 1 || nbInputs < 2 || nbInputs > 3) return -1;
        nvinfer1::Dims dims[3];
        for (int32_t i = 0; i < nbInputs; ++i) dims[i] = in[i].dims;
        if (!deform_roi_pool_params(attrs_, dims, nbInputs, params_)) return -1;
        shapes_ok_ = true;
        return 0;
    });
}

int32_t DeformRoIPoolPlugin::enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const nvinfer1::PluginTensorDesc*,
                                     const void* const* inputs, void* const* outputs, void*,
                                     cudaStream_t stream) noexcept {
    return guarded("DeformRoIPoolPlugin::enqueue", int32_t{-1}, [&]() -> int32_t {
        if (!shapes_ok_) {
            log_error("DeformRoIPool enqueue: called without a successful onShapeChange");
            return -1;
        }
        return deform_roi_pool_launch(params_, inputDesc[0].type, inputDesc[1].type, inputs, outputs[0], stream);
    });
}

nvinfer1::IPluginV3* DeformRoIPoolPlugin::attachToContext(nvinfer1::IPluginResourceContext*) noexcept {
    return clone();  // guarded itself
}

const nvinfer1::PluginFieldCollection* DeformRoIPoolPlugin::getFieldsToSerialize() noexcept {
    return guarded("DeformRoIPoolPlugin::getFieldsToSerialize", kNoFields, [&]() -> const nvinfer1::PluginFieldCollection* {
        deform_roi_pool_fields(attrs_, serialized_);
        return serialized_.collection();
    });
}

DeformRoIPoolCreator::DeformRoIPoolCreator() { deform_roi_pool_field_names(names_); }

nvinfer1::IPluginV3* DeformRoIPoolCreator::createPlugin(const char*, const nvinfer1::PluginFieldCollection* fc,
                                                        nvinfer1::TensorRTPhase) noexcept {
    return guarded("DeformRoIPoolCreator::createPlugin", kNoPlugin, [&]() -> nvinfer1::IPluginV3* {
        DeformRoIPoolAttrs a;
        if (!parse_deform_roi_pool_fields(fc, a)) return nullptr;
        return new DeformRoIPoolPlugin(a);
    });
}

}  // namespace trt
}  // namespace siamattn
