// TensorRT IPluginV2DynamicExt + IPluginCreator for DeformConv2d: the glue for TensorRT 8.5 / 8.6 / 9.x (JetPack 5
// on Xavier), built instead of the IPluginV3 one when the headers are older than 10 (plugin_common.h). Same
// names, fields, shapes, formats and kernels as deform_conv_plugin.h, through deform_conv_core.h.
#pragma once

#include <NvInferRuntime.h>

#include <string>

#include "deform_conv_core.h"

namespace siamattn {
namespace trt {

class DeformConvPluginV2 : public nvinfer1::IPluginV2DynamicExt {
public:
    // nb_inputs: 0 until configurePlugin has seen the node (then serialised with the attributes).
    DeformConvPluginV2(std::string name, std::string version, const DeformConvAttrs& attrs, std::string ns,
                       int32_t nb_inputs = 0)
        : name_(std::move(name)), version_(std::move(version)), attrs_(attrs), namespace_(std::move(ns)),
          nb_inputs_(nb_inputs) {}

    // IPluginV2
    const char* getPluginType() const noexcept override { return name_.c_str(); }
    const char* getPluginVersion() const noexcept override { return version_.c_str(); }
    int32_t getNbOutputs() const noexcept override { return 1; }
    int32_t initialize() noexcept override { return 0; }
    void terminate() noexcept override {}
    size_t getSerializationSize() const noexcept override;
    void serialize(void* buffer) const noexcept override;
    void destroy() noexcept override { delete this; }
    void setPluginNamespace(const char* ns) noexcept override;
    const char* getPluginNamespace() const noexcept override { return namespace_.c_str(); }

    // IPluginV2Ext
    nvinfer1::DataType getOutputDataType(int32_t index, const nvinfer1::DataType* inputTypes,
                                         int32_t nbInputs) const noexcept override;

    // IPluginV2DynamicExt
    nvinfer1::IPluginV2DynamicExt* clone() const noexcept override;
    nvinfer1::DimsExprs getOutputDimensions(int32_t outputIndex, const nvinfer1::DimsExprs* inputs, int32_t nbInputs,
                                            nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, const nvinfer1::PluginTensorDesc* inOut, int32_t nbInputs,
                                   int32_t nbOutputs) noexcept override;
    void configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nbInputs,
                         const nvinfer1::DynamicPluginTensorDesc* out, int32_t nbOutputs) noexcept override;
    size_t getWorkspaceSize(const nvinfer1::PluginTensorDesc* inputs, int32_t nbInputs,
                            const nvinfer1::PluginTensorDesc* outputs, int32_t nbOutputs) const noexcept override;
    int32_t enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const nvinfer1::PluginTensorDesc* outputDesc,
                    const void* const* inputs, void* const* outputs, void* workspace,
                    cudaStream_t stream) noexcept override;

    // The attributes from getSerializationSize()/serialize()'s bytes; false (logged) for a foreign or short blob.
    static bool read(const std::string& name, const void* data, size_t length, DeformConvAttrs& a, int32_t& nb_inputs);

private:
    std::string name_;
    std::string version_;
    DeformConvAttrs attrs_;
    std::string namespace_;
    // V2's enqueue is not told how many inputs there are (B and mask are optional): configurePlugin records it.
    int32_t nb_inputs_;
};

class DeformConvCreatorV2 : public nvinfer1::IPluginCreator {
public:
    // One creator per registered name (siamattn_plugin_names.h): the standard one and our custom one.
    DeformConvCreatorV2(const char* name, const char* version);
    const char* getPluginName() const noexcept override { return name_.c_str(); }
    const char* getPluginVersion() const noexcept override { return version_.c_str(); }
    const nvinfer1::PluginFieldCollection* getFieldNames() noexcept override { return names_.collection(); }
    nvinfer1::IPluginV2* createPlugin(const char* name, const nvinfer1::PluginFieldCollection* fc) noexcept override;
    nvinfer1::IPluginV2* deserializePlugin(const char* name, const void* serialData,
                                           size_t serialLength) noexcept override;
    void setPluginNamespace(const char* ns) noexcept override;
    const char* getPluginNamespace() const noexcept override { return namespace_.c_str(); }

private:
    std::string name_;
    std::string version_;
    std::string namespace_{SIAMATTN_PLUGIN_NAMESPACE};
    FieldNames names_;
};

}  // namespace trt
}  // namespace siamattn
