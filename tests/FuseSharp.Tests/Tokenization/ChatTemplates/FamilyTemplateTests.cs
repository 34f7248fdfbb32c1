using System.Text.Json.Nodes;
using FuseSharp.Tokenization.ChatTemplates;
using Xunit;

namespace FuseSharp.Tests.Tokenization.ChatTemplates;

/// <summary>
/// The prompt formats of the families the fixtures do not cover, written here in the style of their published
/// templates (the fixtures cover Llama-3.x, Mistral v0.2/v3/v7, Qwen2.5, Phi-3/3.5, DeepSeek-R1, ChatGLM4, Granite, ...):
/// ChatML, Llama-2 <c>[INST] &lt;&lt;SYS&gt;&gt;</c>, Gemma (model role, system folded into the first turn, content parts),
/// Command-R (macros, tool signatures, <c>indent</c> + <c>tojson(indent=4)</c>), Qwen3 (reasoning kept only after the last
/// query, <c>break</c>, reversed slicing, <c>enable_thinking</c>), Mistral tool calls (dict equality, <c>tojson</c> slicing),
/// DeepSeek (full-width markers, filtered loop with namespace), OpenChat (<c>str.title</c>) and Phi-3. Each expected prompt
/// follows from the template by jinja2's rules (and was checked against jinja2 3.1.6 with transformers' settings).
/// </summary>
public class FamilyTemplateTests
{
    private const string ChatMl = """"
        {% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
        """";

    private const string Llama2 = """"
        {%- if messages[0]['role'] == 'system' -%}
            {%- set system_message = messages[0]['content'] -%}
            {%- set loop_messages = messages[1:] -%}
        {%- else -%}
            {%- set system_message = false -%}
            {%- set loop_messages = messages -%}
        {%- endif -%}
        {%- for message in loop_messages -%}
            {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
                {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}
            {%- endif -%}
            {%- if loop.index0 == 0 and system_message != false -%}
                {%- set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] -%}
            {%- else -%}
                {%- set content = message['content'] -%}
            {%- endif -%}
            {%- if message['role'] == 'user' -%}
                {{- bos_token + '[INST] ' + content.strip() + ' [/INST]' -}}
            {%- elif message['role'] == 'assistant' -%}
                {{- ' ' + content.strip() + ' ' + eos_token -}}
            {%- endif -%}
        {%- endfor -%}
        """";

    private const string Gemma = """"
        {{ bos_token }}
        {%- if messages[0]['role'] == 'system' -%}
            {%- set first_user_prefix = messages[0]['content'] | trim + '\n\n' -%}
            {%- set loop_messages = messages[1:] -%}
        {%- else -%}
            {%- set first_user_prefix = '' -%}
            {%- set loop_messages = messages -%}
        {%- endif -%}
        {%- for message in loop_messages -%}
            {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
                {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
            {%- endif -%}
            {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
            {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}
            {%- if message['content'] is string -%}
                {{ message['content'] | trim }}
            {%- elif message['content'] is iterable -%}
                {%- for item in message['content'] -%}
                    {%- if item['type'] == 'image' -%}
                        {{ '<start_of_image>' }}
                    {%- elif item['type'] == 'text' -%}
                        {{ item['text'] | trim }}
                    {%- endif -%}
                {%- endfor -%}
            {%- else -%}
                {{ raise_exception('Invalid content type') }}
            {%- endif -%}
            {{ '<end_of_turn>\n' }}
        {%- endfor -%}
        {%- if add_generation_prompt -%}
            {{ '<start_of_turn>model\n' }}
        {%- endif -%}


        """";

    private const string CommandR = """"
        {%- macro py_type(spec) -%}
        {%- set types = {'string': 'str', 'integer': 'int', 'number': 'float', 'boolean': 'bool'} -%}
        {%- if types[spec.type] is defined -%}{{ types[spec.type] }}
        {%- elif spec.type == 'array' -%}List[{{ py_type(spec['items']) }}]
        {%- else -%}Any{%- endif -%}
        {%- endmacro -%}
        {{ bos_token }}
        {%- if messages[0].role == 'system' %}
          {%- set preamble = messages[0].content %}
          {%- set loop_messages = messages[1:] %}
        {%- else %}
          {%- set preamble = 'You are a helpful assistant.' %}
          {%- set loop_messages = messages %}
        {%- endif %}
        <|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|># System Preamble
        {{ preamble }}
        {%- if tools %}


        ## Available Tools
        {% for tool in tools %}
        ```python
        def {{ tool.name }}({% for name, spec in tool.parameters.properties | items %}{{ name }}: {{ py_type(spec) }}{% if not loop.last %}, {% endif %}{% endfor %}) -> List[Dict]:
            """{{ tool.description }}
        {%- if tool.parameters.properties | length > 0 %}


            Args:
        {%- for name, spec in tool.parameters.properties | items %}

                {{ name }} ({{ 'Optional[' ~ py_type(spec) ~ ']' if name not in tool.parameters.required else py_type(spec) }}): {{ spec.description }}
        {%- endfor %}
        {%- endif %}

            """
            pass
        ```
        {% endfor %}
        {%- endif %}<|END_OF_TURN_TOKEN|>
        {%- for message in loop_messages %}
          {%- if message.role == 'user' %}
        <|START_OF_TURN_TOKEN|><|USER_TOKEN|>{{ message.content | trim }}<|END_OF_TURN_TOKEN|>
          {%- elif message.role == 'assistant' and message.tool_calls is defined %}
        <|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Action:
        ```json
        [
        {% for call in message.tool_calls %}
        {{ '{' | indent(4, first=true) }}
        {{ '"tool_name": "' | indent(8, first=true) ~ call.function.name ~ '",' }}
        {{ '"parameters": ' | indent(8, first=true) }}{{ call.function.arguments | tojson(indent=4) | indent(8) }}
        {{ '}' | indent(4, first=true) }}{{ ',' if not loop.last }}
        {% endfor %}
        ]```<|END_OF_TURN_TOKEN|>
          {%- elif message.role == 'assistant' %}
        <|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{{ message.content | trim }}<|END_OF_TURN_TOKEN|>
          {%- elif message.role == 'tool' %}
        <|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|><results>
        {{ message.content }}
        </results><|END_OF_TURN_TOKEN|>
          {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{% endif %}
        """";

    private const string QwenThinking = """"
        {%- if tools %}
            {{- '<|im_start|>system\n' }}
            {%- if messages[0].role == 'system' %}
                {{- messages[0].content + '\n\n' }}
            {%- endif %}
            {{- '# Tools\n\n<tools>' }}
            {%- for tool in tools %}
                {{- '\n' }}
                {{- tool | tojson }}
            {%- endfor %}
            {{- '\n</tools><|im_end|>\n' }}
        {%- elif messages[0].role == 'system' %}
            {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
        {%- endif %}
        {%- set ns = namespace(last_query=messages|length - 1) %}
        {%- for message in messages[::-1] %}
            {%- if message.role == 'user' and not message.content.startswith('<tool_response>') %}
                {%- set ns.last_query = (messages|length - 1) - loop.index0 %}
                {%- break %}
            {%- endif %}
        {%- endfor %}
        {%- for message in messages %}
            {%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}
                {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
            {%- elif message.role == 'assistant' %}
                {%- set content = message.content or '' %}
                {%- set reasoning = message.reasoning_content if message.reasoning_content is string else '' %}
                {%- if not reasoning and '</think>' in content %}
                    {%- set reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                    {%- set content = content.split('</think>')[-1].lstrip('\n') %}
                {%- endif %}
                {%- if loop.index0 > ns.last_query and reasoning %}
                    {{- '<|im_start|>assistant\n<think>\n' + reasoning.strip('\n') + '\n</think>\n\n' + content }}
                {%- else %}
                    {{- '<|im_start|>assistant\n' + content }}
                {%- endif %}
                {%- for call in message.tool_calls | default([]) %}
                    {%- set call = call.function if call.function is defined else call %}
                    {{- '\n<tool_call>\n{"name": "' + call.name + '", "arguments": ' + (call.arguments if call.arguments is string else call.arguments | tojson) + '}\n</tool_call>' }}
                {%- endfor %}
                {{- '<|im_end|>\n' }}
            {%- elif message.role == 'tool' %}
                {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}
                    {{- '<|im_start|>user' }}
                {%- endif %}
                {{- '\n<tool_response>\n' + message.content + '\n</tool_response>' }}
                {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}
                    {{- '<|im_end|>\n' }}
                {%- endif %}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|im_start|>assistant\n' }}
            {%- if enable_thinking is defined and enable_thinking is false %}
                {{- '<think>\n\n</think>\n\n' }}
            {%- endif %}
        {%- endif %}
        """";

    private const string MistralTools = """"
        {%- set user_messages = messages | selectattr('role', 'equalto', 'user') | list %}
        {{- bos_token }}
        {%- for message in messages %}
            {%- if message.role == 'user' %}
                {%- if tools and message == user_messages[-1] %}
                    {{- '[AVAILABLE_TOOLS] ' + tools | tojson + '[/AVAILABLE_TOOLS]' }}
                {%- endif %}
                {{- '[INST] ' + message.content + '[/INST]' }}
            {%- elif message.tool_calls is defined and message.tool_calls is not none %}
                {{- '[TOOL_CALLS] [' }}
                {%- for call in message.tool_calls %}
                    {%- if call.id is not defined or call.id | length != 9 %}
                        {{- raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}
                    {%- endif %}
                    {{- (call.function | tojson)[:-1] + ', "id": "' + call.id + '"}' }}
                    {{- ', ' if not loop.last else ']' + eos_token }}
                {%- endfor %}
            {%- elif message.role == 'assistant' %}
                {{- ' ' + message.content | trim + eos_token }}
            {%- elif message.role == 'tool' %}
                {{- '[TOOL_RESULTS] {"content": ' + message.content | string + ', "call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
            {%- else %}
                {{- raise_exception('Only user, assistant and tool roles are supported!') }}
            {%- endif %}
        {%- endfor %}
        """";

    private const string DeepSeek = """"
        {%- set ns = namespace(system='', first=true) -%}
        {%- for message in messages if message['role'] == 'system' -%}
            {%- set ns.system = ns.system + ('\n\n' if not ns.first else '') + message['content'] -%}
            {%- set ns.first = false -%}
        {%- endfor -%}
        {{ bos_token }}{{ ns.system }}
        {%- for message in messages -%}
            {%- if message['role'] == 'user' -%}
                {{ '<｜User｜>' + message['content'] }}
            {%- elif message['role'] == 'assistant' -%}
                {%- set content = message['content'] -%}
                {%- if '</think>' in content -%}{%- set content = content.split('</think>')[-1] -%}{%- endif -%}
                {{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}
            {%- endif -%}
        {%- endfor -%}
        {%- if add_generation_prompt -%}{{ '<｜Assistant｜><think>\n' }}{%- endif -%}
        """";

    private const string OpenChat = """"
        {{ bos_token }}{% for message in messages %}{{ 'GPT4 Correct ' + message['role'].title() + ': ' + message['content'] + '<|end_of_turn|>'}}{% endfor %}{% if add_generation_prompt %}{{ 'GPT4 Correct Assistant:' }}{% endif %}
        """";

    private const string Phi3 = """"
        {%- for message in messages %}
            {%- if message['role'] == 'system' and message['content'] %}
                {{- '<|system|>\n' + message['content'] + '<|end|>\n' }}
            {%- elif message['role'] in ['user', 'assistant'] %}
                {{- '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|assistant|>\n' }}
        {%- else %}
            {{- eos_token }}
        {%- endif %}
        """";

    private static string Render(string template, string conversation, bool addGenerationPrompt, string variables)
    {
        var vars = JsonNode.Parse(variables)!.AsObject().ToDictionary(p => p.Key, p => p.Value?.DeepClone());
        var request = new ChatTemplateRequest((JsonArray)JsonNode.Parse(conversation)!) { AddGenerationPrompt = addGenerationPrompt, Variables = vars };
        return ChatTemplate.Parse(template).Render(request);
    }

    private const string BasicConversation = "[{\"role\": \"user\", \"content\": \"Hello!\"}]";

    private const string SystemConversation = "[{\"role\": \"system\", \"content\": \"You are terse.\"}, {\"role\": \"user\", \"content\": \" What is 2+2? \"}, {\"role\": \"assistant\", \"content\": \" 4 \"}, {\"role\": \"user\", \"content\": \"Thanks 🙂\"}]";

    private const string ThinkingConversation = "[{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"<think>\\nold reasoning\\n</think>\\n\\nHello.\"}, {\"role\": \"user\", \"content\": \"Sum 2+2\"}, {\"role\": \"assistant\", \"content\": \"<think>\\nadd them\\n</think>\\n\\n4\"}]";

    private const string ToolsConversation = "[{\"role\": \"user\", \"content\": \"Weather in Paris?\"}, {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"call12345\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": [1, 2]}}}]}, {\"role\": \"tool\", \"tool_call_id\": \"call12345\", \"content\": \"{\\\"temp\\\": 21}\"}, {\"role\": \"assistant\", \"content\": \"21 degrees.\"}]";

    private const string GemmaPartsConversation = "[{\"role\": \"system\", \"content\": \"Be nice.\"}, {\"role\": \"user\", \"content\": [{\"type\": \"image\"}, {\"type\": \"text\", \"text\": \" Describe \"}]}, {\"role\": \"assistant\", \"content\": \"A cat.\"}]";

    private const string BadOrderConversation = "[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}]";

    [Fact]
    public void ChatMl_Basic_GenerationPrompt() =>
        Assert.Equal("<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
            Render(ChatMl, BasicConversation, true, "{}"));

    [Fact]
    public void ChatMl_System() =>
        Assert.Equal("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\n What is 2+2? <|im_end|>\n<|im_start|>assistant\n 4 <|im_end|>\n<|im_start|>user\nThanks 🙂<|im_end|>\n",
            Render(ChatMl, SystemConversation, false, "{}"));

    [Fact]
    public void Llama2_System() =>
        Assert.Equal("<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\n What is 2+2? [/INST] 4 </s><s>[INST] Thanks 🙂 [/INST]",
            Render(Llama2, SystemConversation, false, "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}"));

    [Fact]
    public void Llama2_Basic_GenerationPrompt() =>
        Assert.Equal("<s>[INST] Hello! [/INST]",
            Render(Llama2, BasicConversation, true, "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}"));

    [Fact]
    public void Gemma_System_GenerationPrompt() =>
        Assert.Equal("<bos><start_of_turn>user\nYou are terse.\n\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n<start_of_turn>user\nThanks 🙂<end_of_turn>\n<start_of_turn>model\n",
            Render(Gemma, SystemConversation, true, "{\"bos_token\": \"<bos>\"}"));

    [Fact]
    public void Gemma_GemmaParts_GenerationPrompt() =>
        Assert.Equal("<bos><start_of_turn>user\nBe nice.\n\n<start_of_image>Describe<end_of_turn>\n<start_of_turn>model\nA cat.<end_of_turn>\n<start_of_turn>model\n",
            Render(Gemma, GemmaPartsConversation, true, "{\"bos_token\": \"<bos>\"}"));

    [Fact]
    public void CommandR_Basic_GenerationPrompt() =>
        Assert.Equal("<BOS_TOKEN><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|># System Preamble\nYou are a helpful assistant.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello!<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
            Render(CommandR, BasicConversation, true, "{\"bos_token\": \"<BOS_TOKEN>\"}"));

    [Fact]
    public void CommandR_Tools_GenerationPrompt() =>
        Assert.Equal("<BOS_TOKEN><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|># System Preamble\nYou are a helpful assistant.\n\n## Available Tools\n```python\ndef get_weather(city: str, days: List[int]) -> List[Dict]:\n    \"\"\"Current weather in a city\n\n    Args:\n        city (str): City name\n        days (Optional[List[int]]): Days ahead\n    \"\"\"\n    pass\n```\n<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Weather in Paris?<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Action:\n```json\n[\n    {\n        \"tool_name\": \"get_weather\",\n        \"parameters\": {\n            \"city\": \"Paris\",\n            \"days\": [\n                1,\n                2\n            ]\n        }\n    }\n]```<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|><results>\n{\"temp\": 21}\n</results><|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>21 degrees.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
            Render(CommandR, ToolsConversation, true, "{\"bos_token\": \"<BOS_TOKEN>\", \"tools\": [{\"name\": \"get_weather\", \"description\": \"Current weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"days\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"description\": \"Days ahead\"}}, \"required\": [\"city\"]}}]}"));

    [Fact]
    public void QwenThinking_Thinking() =>
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nSum 2+2<|im_end|>\n<|im_start|>assistant\n<think>\nadd them\n</think>\n\n4<|im_end|>\n",
            Render(QwenThinking, ThinkingConversation, false, "{}"));

    [Fact]
    public void QwenThinking_Tools_GenerationPrompt() =>
        Assert.Equal("<|im_start|>system\n# Tools\n\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"days\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"description\": \"Days ahead\"}}, \"required\": [\"city\"]}}}\n</tools><|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": [1, 2]}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response><|im_end|>\n<|im_start|>assistant\n21 degrees.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
            Render(QwenThinking, ToolsConversation, true, "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"days\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"description\": \"Days ahead\"}}, \"required\": [\"city\"]}}}], \"enable_thinking\": false}"));

    [Fact]
    public void QwenThinking_System_GenerationPrompt() =>
        Assert.Equal("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\n What is 2+2? <|im_end|>\n<|im_start|>assistant\n 4 <|im_end|>\n<|im_start|>user\nThanks 🙂<|im_end|>\n<|im_start|>assistant\n",
            Render(QwenThinking, SystemConversation, true, "{}"));

    [Fact]
    public void MistralTools_Tools() =>
        Assert.Equal("<s>[AVAILABLE_TOOLS] [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"days\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"description\": \"Days ahead\"}}, \"required\": [\"city\"]}}}][/AVAILABLE_TOOLS][INST] Weather in Paris?[/INST][TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": [1, 2]}, \"id\": \"call12345\"}]</s>[TOOL_RESULTS] {\"content\": {\"temp\": 21}, \"call_id\": \"call12345\"}[/TOOL_RESULTS] 21 degrees.</s>",
            Render(MistralTools, ToolsConversation, false, "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"days\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"description\": \"Days ahead\"}}, \"required\": [\"city\"]}}}]}"));

    [Fact]
    public void MistralTools_System_GenerationPrompt_Raises()
    {
        var e = Assert.Throws<ChatTemplateException>(() => Render(MistralTools, SystemConversation, true, "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}"));
        Assert.Equal(ChatTemplateErrorKind.Raised, e.Kind);
        Assert.Equal("Only user, assistant and tool roles are supported!", e.Detail);
    }

    [Fact]
    public void DeepSeek_Thinking_GenerationPrompt() =>
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>\n\nHello.<｜end▁of▁sentence｜><｜User｜>Sum 2+2<｜Assistant｜>\n\n4<｜end▁of▁sentence｜><｜Assistant｜><think>\n",
            Render(DeepSeek, ThinkingConversation, true, "{\"bos_token\": \"<｜begin▁of▁sentence｜>\"}"));

    [Fact]
    public void DeepSeek_System_GenerationPrompt() =>
        Assert.Equal("<｜begin▁of▁sentence｜>You are terse.<｜User｜> What is 2+2? <｜Assistant｜> 4 <｜end▁of▁sentence｜><｜User｜>Thanks 🙂<｜Assistant｜><think>\n",
            Render(DeepSeek, SystemConversation, true, "{\"bos_token\": \"<｜begin▁of▁sentence｜>\"}"));

    [Fact]
    public void OpenChat_System_GenerationPrompt() =>
        Assert.Equal("<s>GPT4 Correct System: You are terse.<|end_of_turn|>GPT4 Correct User:  What is 2+2? <|end_of_turn|>GPT4 Correct Assistant:  4 <|end_of_turn|>GPT4 Correct User: Thanks 🙂<|end_of_turn|>GPT4 Correct Assistant:",
            Render(OpenChat, SystemConversation, true, "{\"bos_token\": \"<s>\"}"));

    [Fact]
    public void Phi3_System_GenerationPrompt() =>
        Assert.Equal("<|system|>\nYou are terse.<|end|>\n<|user|>\n What is 2+2? <|end|>\n<|assistant|>\n 4 <|end|>\n<|user|>\nThanks 🙂<|end|>\n<|assistant|>\n",
            Render(Phi3, SystemConversation, true, "{\"eos_token\": \"<|endoftext|>\"}"));

    [Fact]
    public void Phi3_Basic() =>
        Assert.Equal("<|user|>\nHello!<|end|>\n<|endoftext|>",
            Render(Phi3, BasicConversation, false, "{\"eos_token\": \"<|endoftext|>\"}"));

    [Fact]
    public void Llama2_BadOrder_GenerationPrompt_Raises()
    {
        var e = Assert.Throws<ChatTemplateException>(() => Render(Llama2, BadOrderConversation, true, "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}"));
        Assert.Equal(ChatTemplateErrorKind.Raised, e.Kind);
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", e.Detail);
    }

    [Fact]
    public void Gemma_BadOrder_GenerationPrompt_Raises()
    {
        var e = Assert.Throws<ChatTemplateException>(() => Render(Gemma, BadOrderConversation, true, "{\"bos_token\": \"<bos>\"}"));
        Assert.Equal(ChatTemplateErrorKind.Raised, e.Kind);
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", e.Detail);
    }
}
