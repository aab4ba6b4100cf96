// TensorRT IPluginV3 (TensorRT >= 10) for DeformConv2d with ONNX DeformConv attributes and input order:
// X [N,C,H,W], W [M,C/group,kh,kw], offset [N,offset_group*2*kh*kw,oH,oW], B [M] (optional), mask (optional).
#pragma once

#include <NvInferRuntime.h>

#include <string>

#include "deform_conv_core.h"

namespace siamattn {
namespace trt {

class DeformConvPlugin : public nvinfer1::IPluginV3,
                         public nvinfer1::IPluginV3OneCore,
                         public nvinfer1::IPluginV3OneBuild,
                         public nvinfer1::IPluginV3OneRuntime {
public:
    DeformConvPlugin(std::string name, std::string version, const DeformConvAttrs& attrs)
        : name_(std::move(name)), version_(std::move(version)), attrs_(attrs) {}

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    const char* getPluginName() const noexcept override { return name_.c_str(); }
    const char* getPluginVersion() const noexcept override { return version_.c_str(); }
    const char* getPluginNamespace() const noexcept override { return SIAMATTN_PLUGIN_NAMESPACE; }

    // IPluginV3OneBuild
    int32_t configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nbInputs,
                            const nvinfer1::DynamicPluginTensorDesc* out, int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
                               const nvinfer1::DataType* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nbInputs, const nvinfer1::DimsExprs* shapeInputs,
                            int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                            nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* inOut, int32_t nbInputs,
                                   int32_t nbOutputs) noexcept override;
    int32_t getNbOutputs() const noexcept override { return 1; }
    size_t getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t nbInputs,
                            const nvinfer1::DynamicPluginTensorDesc* outputs, int32_t nbOutputs) const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(const nvinfer1::PluginTensorDesc* in, int32_t nbInputs, const nvinfer1::PluginTensorDesc* out,
                          int32_t nbOutputs) noexcept override;
    int32_t enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const nvinfer1::PluginTensorDesc* outputDesc,
                    const void* const* inputs, void* const* outputs, void* workspace,
                    cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    const nvinfer1::PluginFieldCollection* getFieldsToSerialize() noexcept override;

private:
    std::string name_;
    std::string version_;
    DeformConvAttrs attrs_;
    FieldList serialized_;
    // Set by onShapeChange for enqueue.
    siamattn_deform_conv_params params_{};
    int32_t bias_index_ = -1, mask_index_ = -1;
    bool shapes_ok_ = false;
};

class DeformConvCreator : public nvinfer1::IPluginCreatorV3One {
public:
    // One creator per registered name (siamattn_plugin_names.h): the standard one and our custom one.
    DeformConvCreator(const char* name, const char* version);
    nvinfer1::IPluginV3* createPlugin(const char* name, const nvinfer1::PluginFieldCollection* fc,
                                      nvinfer1::TensorRTPhase phase) noexcept override;
    const nvinfer1::PluginFieldCollection* getFieldNames() noexcept override { return names_.collection(); }
    const char* getPluginName() const noexcept override { return name_.c_str(); }
    const char* getPluginVersion() const noexcept override { return version_.c_str(); }
    const char* getPluginNamespace() const noexcept override { return SIAMATTN_PLUGIN_NAMESPACE; }

private:
    std::string name_;
    std::string version_;
    FieldNames names_;
};

}  // namespace trt
}  // namespace siamattn
