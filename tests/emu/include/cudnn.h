// cuDNN is not emulated: the types kernels_gpu.h names, so that it compiles;
// conv.cu is not built for the emulator (its convolutions stay [gpu] tests).
#pragma once

using cudnnHandle_t = struct cudnnContext*;
using cudnnTensorDescriptor_t = struct cudnnTensorStruct*;
using cudnnFilterDescriptor_t = struct cudnnFilterStruct*;
using cudnnConvolutionDescriptor_t = struct cudnnConvolutionStruct*;
