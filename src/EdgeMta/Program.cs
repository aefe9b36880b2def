using System.CommandLine;
using EdgeMta;

var serve = new ServeFlags();
var root = new RootCommand("EdgeMta: an edge SMTP server that queues mail durably for the system behind it");
serve.AddTo(root);
ParseResult parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    Console.Error.WriteLine("edgemta: " + string.Join(' ', parse.Errors[0].Message.Split((char[])['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries)));
    return 2;
}
var o = serve.ToOptions(parse);
Console.WriteLine(string.Join(",", o.Listen) + " " + o.Vrfy + " " + o.MaxMessageSize);
return 0;
