using AiChat.Tests.Architecture.Samples.Used;

namespace AiChat.Tests.Architecture.Samples.Uses;

// A constant is copied into the IL: only the using directive (in the PDB) says where it came from.
public class ConstantThroughUsingSample
{
    public int Read() => Constants.Answer;
}
