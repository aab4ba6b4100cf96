// TensorRT IPluginV2DynamicExt + IPluginCreator for DeformRoIPool: the glue for TensorRT 8.5 / 8.6 / 9.x, built
// instead of the IPluginV3 one when the headers are older than 10. Same name, fields, shapes, formats and kernels
// as deform_roi_pool_plugin.h, through deform_roi_pool_core.h.
#pragma once

#include <NvInferRuntime.h>

#include <string>

#include "deform_roi_pool_core.h"

namespace siamattn {
namespace trt {

class DeformRoIPoolPluginV2 : public nvinfer1::IPluginV2DynamicExt {
public:
    DeformRoIPoolPluginV2(const DeformRoIPoolAttrs& attrs, std::string ns, int32_t nb_inputs = 0)
        : attrs_(attrs), namespace_(std::move(ns)), nb_inputs_(nb_inputs) {}

    const char* getPluginType() const noexcept override { return SIAMATTN_DEFORM_ROI_POOL_NAME; }
    const char* getPluginVersion() const noexcept override { return SIAMATTN_DEFORM_ROI_POOL_VERSION; }
    int32_t getNbOutputs() const noexcept override { return 1; }
    int32_t initialize() noexcept override { return 0; }
    void terminate() noexcept override {}
    size_t getSerializationSize() const noexcept override;
    void serialize(void* buffer) const noexcept override;
    void destroy() noexcept override { delete this; }
    void setPluginNamespace(const char* ns) noexcept override;
    const char* getPluginNamespace() const noexcept override { return namespace_.c_str(); }

    nvinfer1::DataType getOutputDataType(int32_t index, const nvinfer1::DataType* inputTypes,
                                         int32_t nbInputs) const noexcept override;

    nvinfer1::IPluginV2DynamicExt* clone() const noexcept override;
    nvinfer1::DimsExprs getOutputDimensions(int32_t outputIndex, const nvinfer1::DimsExprs* inputs, int32_t nbInputs,
                                            nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, const nvinfer1::PluginTensorDesc* inOut, int32_t nbInputs,
                                   int32_t nbOutputs) noexcept override;
    void configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nbInputs,
                         const nvinfer1::DynamicPluginTensorDesc* out, int32_t nbOutputs) noexcept override;
    size_t getWorkspaceSize(const nvinfer1::PluginTensorDesc*, int32_t, const nvinfer1::PluginTensorDesc*,
                            int32_t) const noexcept override {
        return 0;
    }
    int32_t enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const nvinfer1::PluginTensorDesc* outputDesc,
                    const void* const* inputs, void* const* outputs, void* workspace,
                    cudaStream_t stream) noexcept override;

    static bool read(const void* data, size_t length, DeformRoIPoolAttrs& a, int32_t& nb_inputs);

private:
    DeformRoIPoolAttrs attrs_;
    std::string namespace_;
    int32_t nb_inputs_;  // 2 or 3 (offset is optional); recorded by configurePlugin, serialised
};

class DeformRoIPoolCreatorV2 : public nvinfer1::IPluginCreator {
public:
    DeformRoIPoolCreatorV2();
    const char* getPluginName() const noexcept override { return SIAMATTN_DEFORM_ROI_POOL_NAME; }
    const char* getPluginVersion() const noexcept override { return SIAMATTN_DEFORM_ROI_POOL_VERSION; }
    const nvinfer1::PluginFieldCollection* getFieldNames() noexcept override { return names_.collection(); }
    nvinfer1::IPluginV2* createPlugin(const char* name, const nvinfer1::PluginFieldCollection* fc) noexcept override;
    nvinfer1::IPluginV2* deserializePlugin(const char* name, const void* serialData,
                                           size_t serialLength) noexcept override;
    void setPluginNamespace(const char* ns) noexcept override;
    const char* getPluginNamespace() const noexcept override { return namespace_.c_str(); }

private:
    std::string namespace_{SIAMATTN_PLUGIN_NAMESPACE};
    FieldNames names_;
};

}  // namespace trt
}  // namespace siamattn
