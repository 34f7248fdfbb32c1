using System.Text.Json.Nodes;
using FuseSharp.Tokenization.ChatTemplates;
using Xunit;

namespace FuseSharp.Tests.Tokenization.ChatTemplates;

/// <summary>
/// Jinja semantics one construct at a time: whitespace control (trim_blocks/lstrip_blocks), literals, operators with
/// Python semantics, filters, tests, str/dict/list methods, loops, assignments and jinja2's scoping, macros, globals
/// and undefined values. Each expected string follows from jinja2 3.1's documented rules and was checked against
/// jinja2 3.1.6 running with transformers' environment (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
/// loopcontrols, transformers' tojson).
/// </summary>
public class JinjaSemanticsTests
{
    /// <summary>The render variables every case sees.</summary>
    private const string ContextJson = "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", \"content\": \"  Hi é 🙂\\n\"}, {\"role\": \"assistant\", \"content\": \"Hello\", \"tool_calls\": [{\"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [1.5, null, true]}}}]}], \"n\": 5, \"f\": 2.5, \"s\": \"Hello World\", \"l\": [3, 1, 2], \"d\": {\"b\": 1, \"a\": 2}, \"e\": [], \"u\": \"ünï\"}";

    internal static string Render(string template, string contextJson = ContextJson)
    {
        var ctx = JsonNode.Parse(contextJson)!.AsObject();
        var vars = ctx.Where(p => p.Key != "messages").ToDictionary(p => p.Key, p => p.Value?.DeepClone());
        var request = new ChatTemplateRequest((JsonArray)ctx["messages"]!.DeepClone()) { Variables = vars, Now = new DateTime(2024, 7, 26, 14, 3, 2) };
        return ChatTemplate.Parse(template).Render(request);
    }

    [Theory]
    [InlineData("a\n  {% if true %}\n  b\n  {% endif %}\nc\n", "a\n  b\nc")]
    [InlineData("a\n  {%+ if true %}\n  b\n  {% endif +%}\nc", "a\n    b\n\nc")]
    [InlineData("a  {% if true %}  b  {% endif %}  c", "a    b    c")]
    [InlineData("{%- for i in l -%}\n    {{ i }}\n{%- endfor -%}\n  end", "312end")]
    [InlineData("a   {{- s -}}   b", "aHello Worldb")]
    [InlineData("a\r\nb\rc\n\n", "a\nb\nc\n")]
    [InlineData("{# comment #}\nx\n   {# indented #}\ny {#- strip -#}   z", "x\nyz")]
    [InlineData("{% raw %}{{ kept }}{% endraw %}", "{{ kept }}")]
    [InlineData("a\n  {% raw %}\n  {{ x }}\n  {% endraw %}\nb", "a\n\n  {{ x }}\nb")]
    [InlineData("{% for i in l %}{{ i }}{% if not loop.last %}, {% endif %}{% endfor %}\n", "3, 1, 2")]
    [InlineData("{{ '{{' }}{{ {'a': 1} }}{{ {'a': {'b': 1}} }}", "{{{'a': 1}{'a': {'b': 1}}")]
    public void Whitespace(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{{ 'a\\tb' }}|{{ 'x\\x41\\u00e9' }}|{{ \"it's\" }}|{{ 'don\\'t' }}|{{ '\\q' }}|{{ 'a' 'b' \"c\" }}", "a\tb|xAé|it's|don't|\\q|abc")]
    [InlineData("{{ 0x1F }}|{{ 1_000 }}|{{ 1.5e3 }}|{{ 0o17 }}|{{ 0b101 }}|{{ true }}|{{ True }}|{{ none }}|{{ None }}", "31|1000|1500.0|15|5|True|True|None|None")]
    [InlineData("{{ [1, 'a', none, true, 1.5, [2], {'k': 'v'}, (1,), ()] }}", "[1, 'a', None, True, 1.5, [2], {'k': 'v'}, (1,), ()]")]
    [InlineData("{{ ['it\\'s', \"q\\\"\", 'é', '\\n', '\\x00', '\\u200b', '\\u00a0'] }}", "[\"it's\", 'q\"', 'é', '\\n', '\\x00', '\\u200b', '\\xa0']")]
    [InlineData("{{ 1e16 }}|{{ 1e15 }}|{{ 0.0001 }}|{{ 0.00001 }}|{{ 1/3 }}|{{ -0.0 }}|{{ 3.0 }}|{{ 1e100 }}|{{ 2.5e-10 }}", "1e+16|1000000000000000.0|0.0001|1e-05|0.3333333333333333|-0.0|3.0|1e+100|2.5e-10")]
    public void Literals(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{{ 1 + 2 }}|{{ 7 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 2 ** 3 ** 2 }}|{{ 2 ** -1 }}|{{ 10 / 5 }}", "3|3.5|3|-4|1|2|64|0.5|2.0")]
    [InlineData("{{ 'a' ~ 1 ~ none ~ true }}|{{ 'a' + 'b' }}|{{ 'ab' * 3 }}|{{ [1, 2] + [3] }}|{{ (1, 2) + (3,) }}", "a1NoneTrue|ab|ababab|[1, 2, 3]|(1, 2, 3)")]
    [InlineData("{{ 'x' ~ (1 + 2) }}|{{ (1 + 2) ~ 'x' }}|{{ 2 + 3 * 4 }}|{{ -2 ** 2 }}|{{ 10 - 3 - 2 }}|{{ true + true }}|{{ 0.1 + 0.2 }}|{{ 3 // 2.0 }}|{{ -3 % 2.5 }}", "x3|3x|14|4|5|2|0.30000000000000004|1.0|2.0")]
    [InlineData("{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ 'a' < 'b' }}{{ [1, 2] < [1, 3] }}{{ [1, 2] == (1, 2) }}{{ 1 == 1.0 }}{{ true == 1 }}{{ {'a': 1} == {'a': 1} }}", "TrueFalseTrueTrueFalseTrueTrueTrue")]
    [InlineData("{{ 'a' in 'cat' }}{{ 'z' not in 'cat' }}{{ 1 in [1, 2] }}{{ 'k' in {'k': 1} }}{{ none in [none] }}{{ 2 in range(3) }}", "TrueTrueTrueTrueTrueTrue")]
    [InlineData("{{ x if true }}|{{ x if false }}|{{ 'y' if false else 'n' }}|{{ 1 if 0 else 2 if 0 else 3 }}|{{ not true }}|{{ true and 'x' }}|{{ false or 'y' }}|{{ none or [] }}|{{ 0 and 1 }}", "||n|3|False|x|y|[]|0")]
    [InlineData("{{ l|length > 2 }}|{{ messages|length - 1 }}|{{ s[0] }}{{ s[-1] }}|{{ s[1:3] }}|{{ s[::-1] }}|{{ s[::2] }}|{{ l[1:] }}|{{ l[::-1] }}|{{ l[5] }}|", "True|2|Hd|el|dlroW olleH|HloWrd|[1, 2]|[2, 1, 3]||")]
    [InlineData("{{ '🙂ab'[1:] }}|{{ '🙂ab'|length }}|{{ '🙂ab'[0] }}|{{ u[1] }}|{{ u|reverse }}", "ab|3|🙂|n|ïnü")]
    public void Operators(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{{ s|upper }}|{{ s|lower }}|{{ s|title }}|{{ 'hELLO wORLD'|capitalize }}|{{ s|length }}|{{ s|replace('o', '0') }}|{{ s|reverse }}|{{ s|wordcount }}|{{ s|center(15) }}", "HELLO WORLD|hello world|Hello World|Hello world|11|Hell0 W0rld|dlroW olleH|2|  Hello World  ")]
    [InlineData("{{ s|truncate(9) }}|{{ 'a long sentence here'|truncate(12, true) }}|{{ 'a long sentence here'|truncate(14, false, '..', 0) }}", "Hello World|a long se...|a long..")]
    [InlineData("{{ '  x '|trim }}|{{ 'xx y xx'|trim('x') }}|{{ none|default('d') }}|{{ undefined_var|default('d') }}|{{ ''|default('d', true) }}|{{ 0|d(5) }}", "x| y |None|d|d|0")]
    [InlineData("{{ '42'|int }}|{{ '4.7'|int }}|{{ 'x'|int }}|{{ 'x'|int(7) }}|{{ 3.9|int }}|{{ '0x1F'|int(0, 16) }}|{{ '3.5'|float }}|{{ 'x'|float }}|{{ -3|abs }}", "42|4|0|7|3|31|3.5|0.0|3")]
    [InlineData("{{ 2.567|round(2) }}|{{ 2.5|round }}|{{ 3.5|round }}|{{ 2.675|round(2) }}|{{ 2.1|round(method='ceil') }}|{{ 2.9|round(0, 'floor') }}|{{ 1234|round(-2) }}", "2.57|2.0|4.0|2.67|3.0|2.0|1200")]
    [InlineData("{{ l|sort }}|{{ l|sort(reverse=true) }}|{{ ['b', 'A', 'c']|sort }}|{{ ['b', 'A', 'c']|sort(case_sensitive=true) }}|{{ l|max }}|{{ l|min }}|{{ l|sum }}|{{ l|first }}|{{ l|last }}", "[1, 2, 3]|[3, 2, 1]|['A', 'b', 'c']|['A', 'b', 'c']|3|1|6|3|2")]
    [InlineData("{{ l|reverse|list }}|{{ [1, 1, 2, 'a', 'A']|unique|list }}|{{ l|join(', ') }}|{{ l|map('string')|join }}|{{ l|list }}|{{ 'ab'|list }}|{{ d|list }}", "[2, 1, 3]|[1, 2, 'a']|3, 1, 2|312|[3, 1, 2]|['a', 'b']|['b', 'a']")]
    [InlineData("{{ messages|map(attribute='role')|join(',') }}|{{ messages|selectattr('role', 'equalto', 'user')|list|length }}|{{ messages|rejectattr('role', 'eq', 'user')|map(attribute='role')|list }}|{{ messages|selectattr('tool_calls', 'defined')|list|length }}", "system,user,assistant|1|['system', 'assistant']|1")]
    [InlineData("{{ [{'x': 1}, {}]|map(attribute='x', default=0)|list }}|{{ [{'a': {'b': 2}}, {'a': {'b': 1}}]|map(attribute='a.b')|list }}|{{ [1, 0, 2]|select|list }}|{{ [1, 2, 3]|reject('odd')|list }}|{{ [1, 2, 3]|select('gt', 1)|list }}", "[1, 0]|[2, 1]|[1, 2]|[2]|[2, 3]")]
    [InlineData("{{ d|dictsort }}|{{ d|dictsort(by='value') }}|{{ d|dictsort(reverse=true) }}|{{ d|items|list }}|{{ [{'n': 'b', 'a': 2}, {'n': 'a', 'a': 1}]|sort(attribute='n')|map(attribute='a')|list }}", "[('a', 2), ('b', 1)]|[('b', 1), ('a', 2)]|[('b', 1), ('a', 2)]|[('b', 1), ('a', 2)]|[1, 2]")]
    [InlineData("{{ [1, 2, 3, 4, 5]|batch(2)|list }}|{{ [1, 2, 3, 4, 5]|batch(2, 0)|list }}|{{ [1, 2, 3, 4, 5]|slice(2)|list }}|{{ [{'g': 'a', 'v': 1}, {'g': 'b', 'v': 2}, {'g': 'a', 'v': 3}]|groupby('g') }}", "[[1, 2], [3, 4], [5]]|[[1, 2], [3, 4], [5, 0]]|[[1, 2, 3], [4, 5]]|[('a', [{'g': 'a', 'v': 1}, {'g': 'a', 'v': 3}]), ('b', [{'g': 'b', 'v': 2}])]")]
    [InlineData("{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(width=3, blank=true) }}|{{ 'x'|indent('>> ', first=true) }}", "a\n    b\n\n    c|  a\n  b|a\n   \n   b|>> x")]
    [InlineData("{{ '<a href=\"x\">&'|e }}|{{ '<b>'|safe }}|{{ ('<b>'|safe) + '<i>' }}|{{ '<b>'|forceescape }}|{{ 12345|filesizeformat }}|{{ 1048576|filesizeformat(true) }}", "&lt;a href=&#34;x&#34;&gt;&amp;|<b>|<b>&lt;i&gt;|&lt;b&gt;|12.3 kB|1.0 MiB")]
    [InlineData("{{ '%s and %d'|format('a', 5) }}|{{ '%05.1f'|format(3.14159) }}|{{ '%-5s|'|format('ab') }}|{{ '%x %o %e'|format(255, 8, 12345.678) }}|{{ '%g %g'|format(0.0001, 123456789) }}|{{ '%(a)s'|format(a=1) }}", "a and 5|003.1|ab   ||ff 10 1.234568e+04|0.0001 1.23457e+08|1")]
    public void Filters(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{{ messages[2].tool_calls[0].function.arguments|tojson }}", "{\"a\": 1, \"b\": [1.5, null, true]}")]
    [InlineData("{{ messages[2]|tojson(indent=2) }}", "{\n  \"role\": \"assistant\",\n  \"content\": \"Hello\",\n  \"tool_calls\": [\n    {\n      \"function\": {\n        \"name\": \"f\",\n        \"arguments\": {\n          \"a\": 1,\n          \"b\": [\n            1.5,\n            null,\n            true\n          ]\n        }\n      }\n    }\n  ]\n}")]
    [InlineData("{{ 'é\"\\\\\\n\\t\\u0001'|tojson }}|{{ 'é🙂'|tojson(ensure_ascii=true) }}|{{ 'x'|tojson(4) }}", "\"é\\\"\\\\\\n\\t\\u0001\"|\"\\u00e9\\ud83d\\ude42\"|\"x\"")]
    [InlineData("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ [1, 2]|tojson(separators=(',', ':')) }}|{{ 1.0|tojson }}|{{ 1e20|tojson }}|{{ none|tojson }}|{{ (1, 2)|tojson }}|{{ {1: 'a', none: true}|tojson }}", "{\"a\": 2, \"b\": 1}|[1,2]|1.0|1e+20|null|[1, 2]|{\"1\": \"a\", \"null\": true}")]
    [InlineData("{{ {'a': {'b': [1, {'c': none}]}, 'e': [], 'f': {}}|tojson(indent=4) }}|{{ [{}]|tojson(indent=0) }}|{{ {'a': 'b'}|tojson(indent='\\t') }}", "{\n    \"a\": {\n        \"b\": [\n            1,\n            {\n                \"c\": null\n            }\n        ]\n    },\n    \"e\": [],\n    \"f\": {}\n}|[\n{}\n]|{\n\t\"a\": \"b\"\n}")]
    public void ToJson(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{{ x is defined }}{{ s is defined }}{{ none is none }}{{ s is string }}{{ d is mapping }}{{ l is iterable }}{{ s is iterable }}{{ x is iterable }}{{ n is number }}{{ f is number }}{{ true is boolean }}", "FalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue")]
    [InlineData("{{ n is integer }}{{ f is float }}{{ true is integer }}{{ l is sequence }}{{ d is sequence }}{{ n is odd }}{{ n is even }}{{ 10 is divisibleby 5 }}{{ 'a' is in 'abc' }}{{ n is eq 5 }}{{ n is gt 3 }}{{ n is ge(5) }}", "TrueTrueFalseTrueTrueTrueFalseTrueTrueTrueTrueTrue")]
    [InlineData("{{ s is lower }}{{ 'abc' is lower }}{{ 'AB' is upper }}{{ true is true }}{{ 1 is true }}{{ none is sameas none }}{{ x is undefined }}{{ 'upper' is filter }}{{ 'odd' is test }}{{ range is callable }}{{ l is not mapping }}", "FalseTrueTrueTrueFalseTrueTrueTrueTrueTrueTrue")]
    public void Tests(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{{ s.upper() }}|{{ s.lower() }}|{{ s.split() }}|{{ s.split('o') }}|{{ s.split('o', 1) }}|{{ s.rsplit('o', 1) }}|{{ ' a  b '.split(' ') }}|{{ 'a b'.split(none, 1) }}", "HELLO WORLD|hello world|['Hello', 'World']|['Hell', ' W', 'rld']|['Hell', ' World']|['Hello W', 'rld']|['', 'a', '', 'b', '']|['a', 'b']")]
    [InlineData("{{ s.startswith('He') }}|{{ s.endswith(('x', 'ld')) }}|{{ s.find('o') }}|{{ s.rfind('o') }}|{{ s.find('z') }}|{{ 'a🙂b'.find('b') }}|{{ s.replace('l', 'L', 1) }}|{{ s.count('l') }}|{{ 'Hello'.replace('', '-') }}", "True|True|4|7|-1|2|HeLlo World|3|-H-e-l-l-o-")]
    [InlineData("{{ '  x  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '  x  '.lstrip() }}|{{ '  x  '.rstrip() }}|{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ 'a,b,c'.partition(',') }}|{{ 'a,b,c'.rpartition(',') }}", "x|hi|x  |  x|['a', 'b', 'c']|('a', ',', 'b,c')|('a,b', ',', 'c')")]
    [InlineData("{{ \"it's a-b\".title() }}|{{ 'ab'.center(6, '*') }}|{{ 'ab'.center(7) }}|{{ '5'.zfill(3) }}|{{ '-5'.zfill(4) }}|{{ 'ab'.ljust(4, '.') }}|{{ 'ab'.rjust(4) }}|{{ 'abc'.removeprefix('a') }}", "It'S A-B|**ab**|   ab  |005|-005|ab..|  ab|bc")]
    [InlineData("{{ '12'.isdigit() }}{{ 'x'.isdigit() }}{{ ' '.isspace() }}{{ 'ab'.isalpha() }}{{ 'Ab Cd'.istitle() }}{{ 'AB'.isupper() }}{{ ''.join(['a', 'b']) }}{{ '-'.join(l|map('string')) }}", "TrueFalseTrueTrueTrueTrueab3-1-2")]
    [InlineData("{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.items()|list }}|{{ d.get('a') }}|{{ d.get('z') }}|{{ d.get('z', 'dflt') }}|{{ d['a'] }}|{{ d.a }}|{{ d.keys() }}|{{ d.items() }}", "['b', 'a']|[1, 2]|[('b', 1), ('a', 2)]|2|None|dflt|2|2|dict_keys(['b', 'a'])|dict_items([('b', 1), ('a', 2)])")]
    [InlineData("{{ l.index(2) }}|{{ l.count(1) }}|{{ (1, 2, 1).count(1) }}|{{ '{} {}'.format('a', 1) }}|{{ '{0}{1}{0}'.format('x', 'y') }}|{{ '{:>6}|{:<4}|{:^5}|{:.2f}|{:05d}|{:,}'.format('r', 'l', 'c', 3.14159, 42, 1234567) }}|{{ '{n}'.format(n=3) }}", "2|1|2|a 1|xyx|     r|l   |  c  |3.14|00042|1,234,567|3")]
    public void Methods(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}|{% endfor %}", "1032TrueFalse31|2121FalseFalse332|3210FalseTrue31|")]
    [InlineData("{% for x in l if x > 1 %}{{ x }}{{ loop.index }}/{{ loop.length }}{{ loop.last }},{% else %}none{% endfor %}|{% for x in e %}x{% else %}empty{% endfor %}", "31/2False,22/2True,|empty")]
    [InlineData("{% for x in l %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}|{% for x in l %}{% if x == 1 %}{% break %}{% endif %}{{ x }}{% else %}E{% endfor %}", "32|3")]
    [InlineData("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|{% for c in u %}{{ c }}.{% endfor %}", "b=1;a=2;|b=1;a=2;|ba|ü.n.ï.")]
    [InlineData("{% for a, (b, c) in [(1, (2, 3)), (4, (5, 6))] %}{{ a }}{{ b }}{{ c }}{% endfor %}|{% for x in l %}{{ loop.cycle('a', 'b') }}{% if loop.changed(x > 1) %}!{% endif %}{% endfor %}", "123456|a!b!a!")]
    [InlineData("{% for x in [1, [2, [3]]] recursive %}{% if x is iterable %}<{{ loop(x) }}>{% else %}{{ x }}@{{ loop.depth }}{% endif %}{% endfor %}", "1@1<2@2<3@3>>")]
    [InlineData("{% for i in l %}{% for j in [1, 2] %}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}", "121122123")]
    public void Loops(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{% set ns = namespace(total=0, items=[]) %}{% for x in l %}{% set ns.total = ns.total + x %}{% set ns.items = ns.items + [x] %}{% endfor %}{{ ns.total }}{{ ns.items }}{{ ns }}", "6[3, 1, 2]<Namespace {'total': 6, 'items': [3, 1, 2]}>")]
    [InlineData("{% set a, b = l[0], l[1] %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}{% set x %}block {{ s }}{% endset %}[{{ x }}]{% set y | upper | trim %} lower {% endset %}[{{ y }}]", "31(1, 2)[block Hello World][LOWER]")]
    [InlineData("{% set x = 0 %}{% for i in l %}{% set x = x + i %}[{{ x }}]{% endfor %}{{ x }}", "[3][1][2]0")]
    [InlineData("{% for i in [1, 2] %}{% if i == 2 %}[{{ z }}]{% endif %}{% set z = i %}{% endfor %}[{{ z }}]", "[][]")]
    [InlineData("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]|{% filter upper %}shout {{ s }}{% endfilter %}", "3[]|SHOUT HELLO WORLD")]
    [InlineData("{{ dict(a=1, b=2) }}|{{ dict([('x', 1)]) }}|{{ namespace(a=1).a }}|{% set c = cycler('odd', 'even') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }}|{% set j = joiner('-') %}{{ j() }}a{{ j() }}b", "{'a': 1, 'b': 2}|{'x': 1}|1|oddevenoddeven|a-b")]
    [InlineData("{% for i in [1] %}{{ s }}{% endfor %}{% set s = 'late' %}{{ s }}", "late")]
    [InlineData("{{ s }}{% set s = 'now' %}{% for i in [1] %}{{ s }}{% endfor %}", "Hello Worldnow")]
    public void Assignments(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{% macro greet(name, greeting='Hi') %}{{ greeting }} {{ name }}!{% endmacro %}{{ greet('Bob') }}|{{ greet('Al', greeting='Yo') }}|{{ greet(greeting='X', name='Y') }}|{{ greet() }}", "Hi Bob!|Yo Al!|X Y!|Hi !")]
    [InlineData("{% macro m(a, b=a ~ '!') %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1) }}|{{ m(1, 2, 3, k=4) }}", "11!(){}|12(3,){'k': 4}")]
    [InlineData("{% macro outer(x) %}[{{ caller(x * 2) }}]{% endmacro %}{% call(v) outer(21) %}got {{ v }}{% endcall %}", "[got 42]")]
    [InlineData("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}", "120")]
    [InlineData("{% set x = 1 %}{% macro m() %}{{ x }}{% endmacro %}{% set x = 2 %}{{ m() }}", "2")]
    [InlineData("{% macro m() %}{{ y }}{% endmacro %}{{ m() }}{% set y = 'set' %}{{ m() }}", "set")]
    public void Macros(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{{ range(5)|list }}{{ range(1, 10, 3)|list }}{{ range(5, 0, -2)|list }}{{ range(3) }}{{ range(3)|length }}", "[0, 1, 2, 3, 4][1, 4, 7][5, 3, 1]range(0, 3)3")]
    [InlineData("{{ strftime_now('%Y-%m-%d %H:%M:%S %a %A %b %B %d %j %I%p %y') }}|{{ strftime_now('%-d %e') }}", "2024-07-26 14:03:02 Fri Friday Jul July 26 208 02PM 24|26 26")]
    public void Globals(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{{ x }}|{{ x|length }}|{{ x|list }}|{{ x|join(',') }}|{{ x|upper }}|{{ x|trim }}|{% for i in x %}{{ i }}{% endfor %}|{{ x is none }}|{{ x == none }}|{{ x == y }}", "|0|[]|||||False|False|True")]
    [InlineData("{{ s.nope }}|{{ none.x }}|{{ d.nope }}|{{ l.nope }}|{{ l[10] }}|{{ x.__class__ }}|{{ d.nope is defined }}|{{ d.nope|default('dd') }}", "||||||False|dd")]
    [InlineData("{{ x|first }}|{{ e|first }}|{{ e|last }}|{{ e|max }}|{{ x|items|list }}|{{ x|map('upper')|list }}|{{ x|sum }}", "||||[]|[]|0")]
    public void Undefined(string template, string expected) => Assert.Equal(expected, Render(template));
}
