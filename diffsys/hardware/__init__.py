"""Hardware specs (accelerators, memory levels, power) and cited presets."""

from ._calibration import (
    calibration_kinds as calibration_kinds,
    calibration_provenance as calibration_provenance,
    preset_calibration as preset_calibration,
)
from ._io import (
    accelerator_from_dict as accelerator_from_dict,
    accelerator_to_dict as accelerator_to_dict,
    load_accelerator as load_accelerator,
    save_accelerator as save_accelerator,
)
from ._presets import (
    PRESETS as PRESETS,
    a100_40gb as a100_40gb,
    a100_80gb as a100_80gb,
    b200 as b200,
    gb200 as gb200,
    h100_sxm as h100_sxm,
    h200 as h200,
    jetson_orin as jetson_orin,
    mi250x as mi250x,
    mi300x as mi300x,
    preset as preset,
    tpu_v4 as tpu_v4,
    tpu_v5e as tpu_v5e,
    tpu_v5p as tpu_v5p,
    v100 as v100,
)
from ._spec import (
    DTYPE_BYTES as DTYPE_BYTES,
    MATRIX_DTYPES as MATRIX_DTYPES,
    VECTOR_DTYPES as VECTOR_DTYPES,
    Accelerator as Accelerator,
    MemoryLevel as MemoryLevel,
    PowerSpec as PowerSpec,
)
