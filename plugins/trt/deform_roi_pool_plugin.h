// TensorRT IPluginV3 for DeformRoIPool: feat [N,C,H,W], rois [K,5], offset [K,2,PH,PW] (optional) ->
// [K,C,PH,PW]. Attributes output_height, output_width, spatial_scale, sampling_ratio, gamma and mode
// (0 = mmcv, docs/DESIGN.md §4.2, the default when absent; 1 = mmdet_v1, §4.3).
#pragma once

#include <NvInferRuntime.h>

#include <string>

#include "deform_roi_pool_core.h"

namespace siamattn {
namespace trt {

class DeformRoIPoolPlugin : public nvinfer1::IPluginV3,
                            public nvinfer1::IPluginV3OneCore,
                            public nvinfer1::IPluginV3OneBuild,
                            public nvinfer1::IPluginV3OneRuntime {
public:
    explicit DeformRoIPoolPlugin(const DeformRoIPoolAttrs& attrs) : attrs_(attrs) {}

    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    const char* getPluginName() const noexcept override { return SIAMATTN_DEFORM_ROI_POOL_NAME; }
    const char* getPluginVersion() const noexcept override { return SIAMATTN_DEFORM_ROI_POOL_VERSION; }
    const char* getPluginNamespace() const noexcept override { return SIAMATTN_PLUGIN_NAMESPACE; }

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
    size_t getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc*, int32_t, const nvinfer1::DynamicPluginTensorDesc*,
                            int32_t) const noexcept override {
        return 0;
    }

    int32_t onShapeChange(const nvinfer1::PluginTensorDesc* in, int32_t nbInputs, const nvinfer1::PluginTensorDesc* out,
                          int32_t nbOutputs) noexcept override;
    int32_t enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const nvinfer1::PluginTensorDesc* outputDesc,
                    const void* const* inputs, void* const* outputs, void* workspace,
                    cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    const nvinfer1::PluginFieldCollection* getFieldsToSerialize() noexcept override;


private:
    DeformRoIPoolAttrs attrs_;
    FieldList serialized_;
    siamattn_deform_roi_pool_params params_{};
    bool shapes_ok_ = false;
};

class DeformRoIPoolCreator : public nvinfer1::IPluginCreatorV3One {
public:
    DeformRoIPoolCreator();
    nvinfer1::IPluginV3* createPlugin(const char* name, const nvinfer1::PluginFieldCollection* fc,
                                      nvinfer1::TensorRTPhase phase) noexcept override;
    const nvinfer1::PluginFieldCollection* getFieldNames() noexcept override { return names_.collection(); }
    const char* getPluginName() const noexcept override { return SIAMATTN_DEFORM_ROI_POOL_NAME; }
    const char* getPluginVersion() const noexcept override { return SIAMATTN_DEFORM_ROI_POOL_VERSION; }
    const char* getPluginNamespace() const noexcept override { return SIAMATTN_PLUGIN_NAMESPACE; }

private:
    FieldNames names_;
};

}  // namespace trt
}  // namespace siamattn
