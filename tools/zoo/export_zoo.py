#!/usr/bin/python3
"""Exports torchvision architectures with random weights to ONNX (opset 13, input "image"
[batch,3,H,W] with a symbolic batch, output "logits"), for tools/zoo/check-zoo.js: a by-hand check
that models ternion was not written against load and match onnxruntime. Large files (5-350 MB
each): written to build/zoo, not committed, not run by CI.

    /usr/bin/python3 tools/zoo/export_zoo.py [--out build/zoo] [--only squeezenet1_0,...]
"""
import argparse
import os

import torch
import torchvision

MODELS = ("squeezenet1_0,shufflenet_v2_x0_5,googlenet,densenet121,efficientnet_b0,mnasnet0_5,regnet_y_400mf,"
          "mobilenet_v3_small,convnext_tiny,resnext50_32x4d,inception_v3,swin_t,vit_b_16,"
          "segmentation.lraspp_mobilenet_v3_large,segmentation.deeplabv3_mobilenet_v3_large,video.r3d_18")


class SegmentationOut(torch.nn.Module):
    """torchvision's segmentation models return {"out": ...}: the tensor alone."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "build", "zoo"))
    p.add_argument("--only", default=MODELS)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    for name in args.only.split(","):
        kw = dict(aux_logits=False, init_weights=True) if name in ("googlenet", "inception_v3") else {}
        if name.startswith("segmentation."):
            kw = dict(weights_backbone=None, aux_loss=False) if "lraspp" not in name else dict(weights_backbone=None)
        module = torchvision.models
        for part in name.split(".")[:-1]:  # segmentation.NAME, video.NAME
            module = getattr(module, part)
        m = getattr(module, name.split(".")[-1])(weights=None, **kw).eval()
        if name.startswith("segmentation."):
            m = SegmentationOut(m)
        if name.startswith("vit"):
            # torchvision zero-initializes the ViT head: give it weights so the logits differ.
            with torch.no_grad():
                m.heads.head.weight.normal_(0, 0.02)
                m.heads.head.bias.normal_(0, 0.02)
        size = 299 if name == "inception_v3" else 224
        sample = torch.rand(1, 3, 16, 112, 112) if name.startswith("video.") else torch.rand(1, 3, size, size)
        torch.onnx.export(m, sample, os.path.join(args.out, f"{name.split('.')[-1]}.onnx"), opset_version=13,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        print("exported", name, flush=True)


if __name__ == "__main__":
    main()
