// NCCL is not emulated (cuda_check.h includes this for its NCCL_CHECK macros,
// which no emulated source expands).
#pragma once
