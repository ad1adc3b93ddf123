# pytorch/examples' MNIST CNN: Adadelta lr 1.0, StepLR gamma 0.7 per epoch, batch 64.
_base_ = ["_base_/mnist.py", "_base_/runtime.py"]
model = dict(type="MnistCNN")
optimizer = dict(type="Adadelta", lr=1.0)
param_scheduler = dict(type="StepLR", step_size=1, gamma=0.7)
max_epochs = 14
