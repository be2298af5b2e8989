{%- call kt::func_decl("", func, 8) %}
