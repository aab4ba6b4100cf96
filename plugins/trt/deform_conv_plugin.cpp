#include "deform_conv_plugin.h"

#include <vector>

namespace siamattn {
namespace trt {

using nvinfer1::DataType;

nvinfer1::IPluginCapability* DeformConvPlugin::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept {
    return capability_of(this, type);
}

nvinfer1::IPluginV3* DeformConvPlugin::clone() noexcept {
    return guarded("DeformConvPlugin::clone", kNoPlugin, [&]() -> nvinfer1::IPluginV3* {
        return new DeformConvPlugin(name_, version_, attrs_);
    });
}

int32_t DeformConvPlugin::configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nbInputs,
                                          const nvinfer1::DynamicPluginTensorDesc*, int32_t nbOutputs) noexcept {
    return guarded("DeformConvPlugin::configurePlugin", int32_t{-1}, [&]() -> int32_t {
        if (nbOutputs != 1 || nbInputs < kDeformConvMinInputs || nbInputs > kDeformConvMaxInputs) return -1;
        // Check what is known at build time: the optimisation profile's max dims are concrete.
        std::vector<nvinfer1::Dims> dims(nbInputs);
        for (int32_t i = 0; i < nbInputs; ++i) dims[i] = in[i].max;
        siamattn_deform_conv_params p;
        int32_t bi, mi;
        return deform_conv_params(name_, attrs_, dims.data(), nbInputs, p, &bi, &mi) ? 0 : -1;
    });
}

int32_t DeformConvPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, const DataType* inputTypes,
                                             int32_t nbInputs) const noexcept {
    return guarded("DeformConvPlugin::getOutputDataTypes", int32_t{-1}, [&]() -> int32_t {
        if (nbOutputs != 1 || nbInputs < 1) return -1;
        outputTypes[0] = inputTypes[0];
        return 0;
    });
}

int32_t DeformConvPlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nbInputs,
                                          const nvinfer1::DimsExprs*, int32_t, nvinfer1::DimsExprs* outputs,
                                          int32_t nbOutputs, nvinfer1::IExprBuilder& eb) noexcept {
    return guarded("DeformConvPlugin::getOutputShapes", int32_t{-1}, [&]() -> int32_t {
        if (nbOutputs != 1 || nbInputs < kDeformConvMinInputs || nbInputs > kDeformConvMaxInputs) {
            log_error(name_ + ": expects 3 to 5 inputs and 1 output");
            return -1;
        }
        if (inputs[0].nbDims != 4 || inputs[1].nbDims != 4) {
            log_error(name_ + ": X and W must be 4-D");
            return -1;
        }
        deform_conv_output_dims(attrs_, inputs, eb, outputs[0]);
        return 0;
    });
}

bool DeformConvPlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* inOut,
                                                 int32_t nbInputs, int32_t nbOutputs) noexcept {
    return guarded("DeformConvPlugin::supportsFormatCombination", false, [&]() -> bool {
        if (pos < 0 || pos >= nbInputs + nbOutputs) return false;
        return deform_conv_format_ok(pos, inOut[pos].desc.type, inOut[pos].desc.format, inOut[0].desc.type);
    });
}

size_t DeformConvPlugin::getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t nbInputs,
                                          const nvinfer1::DynamicPluginTensorDesc*, int32_t) const noexcept {
    return guarded("DeformConvPlugin::getWorkspaceSize", size_t{0}, [&]() -> size_t {
        std::vector<nvinfer1::Dims> dims(nbInputs);
        for (int32_t i = 0; i < nbInputs; ++i) dims[i] = inputs[i].max;
        return deform_conv_workspace_bound(name_, attrs_, dims.data(), nbInputs, inputs[0].desc.type);
    });
}

// Runtime: called with concrete shapes before enqueue (which gets no input count), so the validated
// parameters and the roles of the optional inputs are kept for it.
int32_t DeformConvPlugin::onShapeChange(const nvinfer1::PluginTensorDesc* in, int32_t nbInputs,
                                        const nvinfer1::PluginTensorDesc*, int32_t nbOutputs) noexcept {
    return guarded("DeformConvPlugin::onShapeChange", int32_t{-1}, [&]() -> int32_t {
        shapes_ok_ = false;
        if (nbOutputs != 1 || nbInputs < kDeformConvMinInputs || nbInputs > kDeformConvMaxInputs) return -1;
        nvinfer1::Dims dims[kDeformConvMaxInputs];
        for (int32_t i = 0; i < nbInputs; ++i) dims[i] = in[i].dims;
        if (!deform_conv_params(name_, attrs_, dims, nbInputs, params_, &bias_index_, &mask_index_)) return -1;
        shapes_ok_ = true;
        return 0;
    });
}

int32_t DeformConvPlugin::enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const nvinfer1::PluginTensorDesc*,
                                  const void* const* inputs, void* const* outputs, void* workspace,
                                  cudaStream_t stream) noexcept {
    return guarded("DeformConvPlugin::enqueue", int32_t{-1}, [&]() -> int32_t {
        if (!shapes_ok_) {
            log_error(name_ + " enqueue: called without a successful onShapeChange");
            return -1;
        }
        return deform_conv_launch(name_, params_, bias_index_, mask_index_, inputDesc[0].type, inputs, outputs[0],
                                  workspace, stream);
    });
}

nvinfer1::IPluginV3* DeformConvPlugin::attachToContext(nvinfer1::IPluginResourceContext*) noexcept {
    return clone();  // guarded itself
}

const nvinfer1::PluginFieldCollection* DeformConvPlugin::getFieldsToSerialize() noexcept {
    return guarded("DeformConvPlugin::getFieldsToSerialize", kNoFields, [&]() -> const nvinfer1::PluginFieldCollection* {
        deform_conv_fields(attrs_, serialized_);
        return serialized_.collection();
    });
}

DeformConvCreator::DeformConvCreator(const char* name, const char* version) : name_(name), version_(version) {
    deform_conv_field_names(names_);
}

nvinfer1::IPluginV3* DeformConvCreator::createPlugin(const char*, const nvinfer1::PluginFieldCollection* fc,
                                                     nvinfer1::TensorRTPhase) noexcept {
    return guarded("DeformConvCreator::createPlugin", kNoPlugin, [&]() -> nvinfer1::IPluginV3* {
        DeformConvAttrs a;
        if (!parse_deform_conv_fields(name_, fc, a)) return nullptr;
        return new DeformConvPlugin(name_, version_, a);
    });
}

}  // namespace trt
}  // namespace siamattn
