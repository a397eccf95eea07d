"""Op-level and hierarchical roofline models, efficiency curves, the op library and op graphs."""

from ._core import Roofline as Roofline, roofline as roofline, serialized as serialized
from ._efficiency import (
    MATRIX_EFFICIENCY_MAX as MATRIX_EFFICIENCY_MAX,
    MATRIX_RAMP_S as MATRIX_RAMP_S,
    MEMORY_EFFICIENCY_MAX as MEMORY_EFFICIENCY_MAX,
    VECTOR_EFFICIENCY as VECTOR_EFFICIENCY,
    Efficiency as Efficiency,
    EfficiencyCurve as EfficiencyCurve,
    as_efficiency as as_efficiency,
    constant_efficiency as constant_efficiency,
    default_efficiency as default_efficiency,
    fit_efficiency_curve as fit_efficiency_curve,
)
from ._graphs import (
    TRANSFORMER_MODES as TRANSFORMER_MODES,
    GraphTime as GraphTime,
    OpGraph as OpGraph,
    graph_time as graph_time,
    lm_embedding_ops as lm_embedding_ops,
    resnet50_layers as resnet50_layers,
    transformer_layer_ops as transformer_layer_ops,
    vit_b16_layers as vit_b16_layers,
)
from ._ops import (
    GemmKernels as GemmKernels,
    OpCost as OpCost,
    add_ops as add_ops,
    attention as attention,
    attention_pairs as attention_pairs,
    bytes_of as bytes_of,
    conv2d as conv2d,
    conv_output_size as conv_output_size,
    depthwise_conv2d as depthwise_conv2d,
    elementwise as elementwise,
    embedding as embedding,
    gemm as gemm,
    layernorm as layernorm,
    matmul_backward as matmul_backward,
    reduction as reduction,
    rmsnorm as rmsnorm,
    softmax as softmax,
)
from ._gemm import (
    GEMM_CONSTANT_NAMES as GEMM_CONSTANT_NAMES,
    GEMM_DEFAULT_CONSTANTS as GEMM_DEFAULT_CONSTANTS,
    gemm_constants as gemm_constants,
    gemm_time as gemm_time,
)
from ._optime import compute_time as compute_time, op_time as op_time, unit_peaks as unit_peaks
from ._chart import plot_roofline as plot_roofline
from ._attention_kernels import (
    BACKWARD_MATMULS_PER_BLOCK as BACKWARD_MATMULS_PER_BLOCK,
    BACKWARD_MMA_EFFICIENCY_RATIO as BACKWARD_MMA_EFFICIENCY_RATIO,
    DEFAULT_ATTENTION_CONSTANTS as DEFAULT_ATTENTION_CONSTANTS,
    AttentionKernelTime as AttentionKernelTime,
    attention_constants as attention_constants,
    causal_tile_pairs as causal_tile_pairs,
    decode_attention_time as decode_attention_time,
    mmha_threads_and_splits as mmha_threads_and_splits,
    prefill_attention_time as prefill_attention_time,
    xqa_use_and_splits as xqa_use_and_splits,
)
from ._hierarchical import (
    HOST_LINKS_Bps as HOST_LINKS_Bps,
    HierarchicalRoofline as HierarchicalRoofline,
    gemm_level_bytes as gemm_level_bytes,
    hierarchical_op_time as hierarchical_op_time,
    hierarchical_roofline as hierarchical_roofline,
    with_host_level as with_host_level,
)
from ._model import OpMetrics as OpMetrics, OpSpec as OpSpec, op_model as op_model
