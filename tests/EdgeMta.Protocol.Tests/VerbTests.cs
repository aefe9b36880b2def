// The 4-byte opcodes: each constant checked against its derivation, recognition case-insensitive and exact.
using System.Buffers.Binary;
using System.Text;
using EdgeMta.Protocol;

namespace EdgeMta.Protocol.Tests;

public class VerbTests
{
    public static TheoryData<string, uint> Opcodes => new()
    {
        { "helo", VerbOpcodes.Helo }, { "ehlo", VerbOpcodes.Ehlo }, { "mail", VerbOpcodes.Mail }, { "rcpt", VerbOpcodes.Rcpt },
        { "data", VerbOpcodes.Data }, { "bdat", VerbOpcodes.Bdat }, { "rset", VerbOpcodes.Rset }, { "noop", VerbOpcodes.Noop },
        { "quit", VerbOpcodes.Quit }, { "vrfy", VerbOpcodes.Vrfy }, { "expn", VerbOpcodes.Expn }, { "help", VerbOpcodes.Help },
        { "turn", VerbOpcodes.Turn }, { "send", VerbOpcodes.Send }, { "soml", VerbOpcodes.Soml }, { "saml", VerbOpcodes.Saml },
        { "star", VerbOpcodes.Star },
    };

    [Theory]
    [MemberData(nameof(Opcodes))]
    public void EachOpcodeIsItsFourLowerCaseLettersReadLittleEndian(string letters, uint opcode)
    {
        Assert.Equal(opcode, BinaryPrimitives.ReadUInt32LittleEndian(Encoding.ASCII.GetBytes(letters)));
        Assert.Equal(opcode, BinaryPrimitives.ReadUInt32LittleEndian(Encoding.ASCII.GetBytes(letters.ToUpperInvariant())) | VerbOpcodes.CaseFold);
    }

    [Fact]
    public void TheStartTlsOpcodeIsItsEightLettersReadLittleEndian()
    {
        Assert.Equal(VerbOpcodes.StartTls, BinaryPrimitives.ReadUInt64LittleEndian("starttls"u8));
        Assert.Equal(VerbOpcodes.StartTls, BinaryPrimitives.ReadUInt64LittleEndian("StartTLS"u8) | VerbOpcodes.CaseFold8);
    }

    [Fact]
    public void TheCaseFoldMakesALetterOnlyFromTheSameLetter()
    {
        // Bit 5 is the only one set: a byte folds onto a lower-case letter only from that letter or its capital.
        for (int b = 0; b < 256; b++)
        {
            int folded = b | 0x20;
            if (folded >= 'a' && folded <= 'z')
            {
                Assert.True(b == folded || b == folded - 0x20, $"byte {b:X2}");
            }
        }
    }

    [Theory]
    [InlineData("HELO x", SmtpVerb.Helo, 5)]
    [InlineData("helo x", SmtpVerb.Helo, 5)]
    [InlineData("HeLo x", SmtpVerb.Helo, 5)]
    [InlineData("EHLO   x", SmtpVerb.Ehlo, 7)]
    [InlineData("MAIL FROM:<>", SmtpVerb.Mail, 5)]
    [InlineData("RCPT TO:<a@b>", SmtpVerb.Rcpt, 5)]
    [InlineData("DATA", SmtpVerb.Data, 4)]
    [InlineData("BDAT 10 LAST", SmtpVerb.Bdat, 5)]
    [InlineData("rset", SmtpVerb.Rset, 4)]
    [InlineData("NOOP", SmtpVerb.Noop, 4)]
    [InlineData("QUIT", SmtpVerb.Quit, 4)]
    [InlineData("VRFY Crispin", SmtpVerb.Vrfy, 5)]
    [InlineData("EXPN staff", SmtpVerb.Expn, 5)]
    [InlineData("HELP", SmtpVerb.Help, 4)]
    [InlineData("TURN", SmtpVerb.Turn, 4)]
    [InlineData("SEND FROM:<a@b>", SmtpVerb.Send, 5)]
    [InlineData("SOML FROM:<a@b>", SmtpVerb.Soml, 5)]
    [InlineData("SAML FROM:<a@b>", SmtpVerb.Saml, 5)]
    [InlineData("STARTTLS", SmtpVerb.StartTls, 8)]
    [InlineData("starttls", SmtpVerb.StartTls, 8)]
    [InlineData(".", SmtpVerb.Dot, 1)]
    public void RecogniseNamesTheVerbCaseInsensitivelyAndFindsItsArgument(string line, SmtpVerb verb, int argumentStart)
    {
        Assert.Equal(verb, VerbOpcodes.Recognise(Encoding.ASCII.GetBytes(line), out int start));
        Assert.Equal(argumentStart, start);
    }

    [Theory]
    [InlineData("MAILX FROM:<>")]
    [InlineData("MAI")]
    [InlineData("STAR")]
    [InlineData("STARTTLSX")]
    [InlineData("STARTTL")]
    [InlineData("HEL\u000fx")]
    [InlineData("H\u00c5LO x")]
    [InlineData("..")]
    [InlineData("QUIT\tnow")]
    [InlineData("GET / HTTP/1.1")]
    public void RecogniseAnswersUnknownForAnythingButAVerbFollowedBySpaceOrEnd(string line)
    {
        Assert.Equal(SmtpVerb.Unknown, VerbOpcodes.Recognise(Encoding.Latin1.GetBytes(line), out _));
    }

    [Fact]
    public void TheFlagsTableCoversEveryVerb()
    {
        Assert.Equal(Enum.GetValues<SmtpVerb>().Length, VerbTable.Count);
    }

    [Fact]
    public void ExactlyTheRfc2920AndRfc3207GroupEndersEndAPipeliningGroup()
    {
        SmtpVerb[] enders = [SmtpVerb.Ehlo, SmtpVerb.Helo, SmtpVerb.Data, SmtpVerb.Vrfy, SmtpVerb.Expn, SmtpVerb.Turn, SmtpVerb.Noop, SmtpVerb.StartTls];
        foreach (SmtpVerb v in Enum.GetValues<SmtpVerb>())
        {
            Assert.Equal(enders.Contains(v), VerbTable.Has(v, VerbFlags.EndsPipelineGroup));
        }
    }

    [Fact]
    public void DataRsetQuitNoopStartTlsAndTurnTakeNoArguments()
    {
        SmtpVerb[] none = [SmtpVerb.Data, SmtpVerb.Rset, SmtpVerb.Quit, SmtpVerb.Noop, SmtpVerb.StartTls, SmtpVerb.Turn];
        foreach (SmtpVerb v in Enum.GetValues<SmtpVerb>())
        {
            Assert.Equal(none.Contains(v), VerbTable.Has(v, VerbFlags.NoArguments));
        }
    }

    [Fact]
    public void TurnSendSomlAndSamlAreNotImplementedAndOnlyTheLegacySendOnesCanBecomeMail()
    {
        Assert.True(VerbTable.Has(SmtpVerb.Turn, VerbFlags.NotImplemented));
        Assert.False(VerbTable.Has(SmtpVerb.Turn, VerbFlags.LegacySend));
        foreach (SmtpVerb v in new[] { SmtpVerb.Send, SmtpVerb.Soml, SmtpVerb.Saml })
        {
            Assert.True(VerbTable.Has(v, VerbFlags.NotImplemented | VerbFlags.LegacySend));
            Assert.Equal(VerbFlags.NotImplemented | VerbFlags.LegacySend, VerbTable.Of(v) & (VerbFlags.NotImplemented | VerbFlags.LegacySend));
        }
    }

    [Fact]
    public void TheVectorAndScalarMatchersAgreeOnEveryCaseOfEveryVerbAndOnRandomOpcodes()
    {
        foreach ((string letters, uint _) in Opcodes.Select(row => ((string)row[0], (uint)row[1])))
        {
            for (int caseMask = 0; caseMask < 16; caseMask++)
            {
                byte[] b = Encoding.ASCII.GetBytes(letters);
                for (int k = 0; k < 4; k++)
                {
                    if ((caseMask & (1 << k)) != 0)
                    {
                        b[k] = (byte)char.ToUpperInvariant((char)b[k]);
                    }
                }
                uint op = BinaryPrimitives.ReadUInt32LittleEndian(b) | VerbOpcodes.CaseFold;
                Assert.NotEqual(SmtpVerb.Unknown, VerbOpcodes.MatchScalar(op));
                Assert.Equal(VerbOpcodes.MatchScalar(op), VerbOpcodes.MatchVector(op));
            }
        }
        var random = new Random(2920);
        for (int i = 0; i < 200_000; i++)
        {
            uint op = (uint)random.Next() ^ ((uint)random.Next(2) << 31);
            Assert.Equal(VerbOpcodes.MatchScalar(op), VerbOpcodes.MatchVector(op));
            op |= VerbOpcodes.CaseFold;
            Assert.Equal(VerbOpcodes.MatchScalar(op), VerbOpcodes.MatchVector(op));
        }
        Assert.Equal(SmtpVerb.Unknown, VerbOpcodes.MatchVector(0));
    }
}
