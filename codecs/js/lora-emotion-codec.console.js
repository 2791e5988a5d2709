/* lora-emotion payload codec (format 1), TS013 decodeUplink/encodeDownlink/decodeDownlink, ECMAScript 5.1. Minified from codecs/js/lora-emotion-codec.js by codecs/js/build.js: read and edit that file. To declare user label sets, set USER_LABEL_SETS below. */
var USER_LABEL_SETS=[],LE_BUILTIN_SETS=[[0,"fer2013",["angry","disgust","fear","happy","sad","surprise","neutral"]],[1,"ferplus",["neutral","happiness","surprise","sadness","anger","disgust","fear","contempt"]],[2,"physio3",["angry","happy","sad"]],[3,"valence3",["pleasant","unpleasant","neutral"]],[4,"ravdess",["neutral","calm","happy","sad","angry","fearful","disgust","surprised"]],[5,"tess",["anger","disgust","fear","happiness","pleasant_surprise","sadness","neutral"]]],LE_MAX_PAYLOAD=51,LE_STEPS=101,LE_WINDOW_RADIX=65536,LE_SKIN_RADIX=10002,LE_HEART_RADIX=252,LE_GAP_RADIX=4096,LE_SUMMARY_MAX=65535,LE_MAX_SET_ID=23,LE_MAX_CLASSES=64,LE_NO_FACE="none",LE_COMMAND_PORT=3,LE_RELAY_MAX_CLASSES=16,LE_MODES=["reading","distribution","summary","vitals"],LE_COMMAND_STATUS=["none","applied","rejected","unknown_command"],LE_STATUS_RADICES=[16,16,64,64,102,1048576,65536,65536,4,1024,24,65536,256,4],LE_NAME=/^[A-Za-z0-9][A-Za-z0-9._-]*$/
;function LeError(e,n,t){var r=[];null!=t&&r.push("byte "+t),null!=n&&r.push(r.length?"("+n+")":n),
this.message=r.length?r.join(" ")+": "+e:e}function leFail(e,n,t){throw new LeError(e,n,t)}var LIMB=65536
;function bnTrim(e){for(;e.length&&0===e[e.length-1];)e.pop();return e}function bnFromNumber(e){
for(var n=[];e>0;)n.push(e%LIMB),e=Math.floor(e/LIMB);return n}function bnFromBytes(e,n,t){var r,a=[]
;for(r=t;r-2>=n;r-=2)a.push(256*e[r-2]+e[r-1]);return r-1>=n&&a.push(e[r-1]),bnTrim(a)}function bnToNumber(e){
for(var n=0,t=e.length-1;t>=0;t--)n=n*LIMB+e[t];return n}function bnCmp(e,n){
if(e.length!==n.length)return e.length<n.length?-1:1;for(var t=e.length-1;t>=0;t--)if(e[t]!==n[t])return e[t]<n[t]?-1:1
;return 0}function bnAdd(e,n){for(var t=[],r=0,a=Math.max(e.length,n.length),i=0;i<a;i++){var o=(e[i]||0)+(n[i]||0)+r
;t.push(o%LIMB),r=o>=LIMB?1:0}return r&&t.push(r),t}function bnSub(e,n){for(var t=[],r=0,a=0;a<e.length;a++){
var i=e[a]-(n[a]||0)-r;r=i<0?1:0,t.push(i<0?i+LIMB:i)}return bnTrim(t)}function bnMulSmall(e,n){
for(var t=[],r=0,a=0;a<e.length;a++){var i=e[a]*n+r;t.push(i%LIMB),r=Math.floor(i/LIMB)}for(;r>0;)t.push(r%LIMB),
r=Math.floor(r/LIMB);return bnTrim(t)}function bnMul(e,n){if(!e.length||!n.length)return[];var t,r,a=[]
;for(t=0;t<e.length+n.length;t++)a.push(0);for(t=0;t<e.length;t++){var i=0;for(r=0;r<n.length;r++){
var o=a[t+r]+e[t]*n[r]+i;a[t+r]=o%LIMB,i=Math.floor(o/LIMB)}for(var l=t+n.length;i>0;){var s=a[l]+i;a[l]=s%LIMB,
i=Math.floor(s/LIMB),l++}}return bnTrim(a)}function bnDivSmall(e,n){for(var t=[],r=0,a=e.length-1;a>=0;a--){
var i=r*LIMB+e[a],o=Math.floor(i/n);t[a]=o,r=i-o*n}return[bnTrim(t),r]}function bnBitLength(e){if(!e.length)return 0
;for(var n=e[e.length-1],t=0;n>0;)t++,n=Math.floor(n/2);return 16*(e.length-1)+t}function bnShiftLeft1(e){
for(var n=0,t=0;t<e.length;t++){var r=2*e[t]+n;e[t]=65535&r,n=r>>16}return n&&e.push(n),e}function bnDivmod(e,n){
if(n.length<=2){var t=bnDivSmall(e,bnToNumber(n));return[t[0],bnFromNumber(t[1])]}if(bnCmp(e,n)<0)return[[],e.slice()]
;for(var r=[],a=[],i=bnBitLength(e)-1;i>=0;i--)if(bnShiftLeft1(a),e[i>>4]>>(15&i)&1&&(a.length?a[0]|=1:a.push(1)),
bnCmp(a,n)>=0){for(a=bnSub(a,n);r.length<=i>>4;)r.push(0);r[i>>4]|=1<<(15&i)}return[bnTrim(r),a]}function bnPow(e,n){
for(var t=[1],r=0;r<n;r++)t=bnMul(t,e);return t}function bnByteLength(e){var n=bnBitLength(bnSub(e,[1]))
;return Math.max(1,Math.ceil(n/8))}var combCache={},combCacheSize=0,COMB_CACHE_LIMIT=2e4;function bnComb(e,n){
if(n<0||e<0||n>e)return[];n>e-n&&(n=e-n);var t=e+","+n,r=combCache[t];if(r)return r
;for(var a=[1],i=1;i<=n;i++)a=bnDivSmall(bnMulSmall(a,e-n+i),i)[0]
;return combCacheSize>=COMB_CACHE_LIMIT&&(combCache={},combCacheSize=0),combCache[t]=a,combCacheSize++,a}
function unrankComposition(e,n,t){for(var r=[],a=n,i=bnComb(n+t-1,t-1),o=0;o<t-1;o++){
for(var l=t-1-o,s=bnSub(i,e),u=0,c=i,h=Math.floor(2*l*Math.log(a+1)/(3*Math.LN2))+1;u<a;){if(0===h--){
for(var b=u,f=a;b<f;){var d=Math.floor((b+f+1)/2);bnCmp(bnComb(a-d+l,l),s)>=0?b=d:f=d-1}c=bnComb(a-(u=b)+l,l);break}
var m=a-u,g=bnDivSmall(bnMulSmall(c,m),m+l)[0];if(bnCmp(g,s)<0)break;c=g,u++}e=bnSub(e,bnSub(i,c)),r.push(u),a-=u,
i=bnDivSmall(bnMulSmall(c,l),a+l)[0]}return r.push(a),r}function numComb(e,n){if(n<0||e<0||n>e)return 0;n>e-n&&(n=e-n)
;for(var t=1,r=1;r<=n;r++)t=t*(e-n+r)/r;return t}function unrankCompositionSmall(e,n,t){for(var r=[],a=n,i=0;i<t-1;i++){
for(var o=t-1-i,l=numComb(a+o,o),s=0,u=a;s<u;){var c=Math.floor((s+u+1)/2);l-numComb(a-c+o,o)<=e?s=c:u=c-1}
e-=l-numComb(a-s+o,o),r.push(s),a-=s}return r.push(a),r}function unrankShares(e,n,t){
return bnBitLength(n)<=45?unrankCompositionSmall(bnToNumber(e),100,t):unrankComposition(e,100,t)}
function unrankBounded(e,n,t){if(bnCmp(e,bnComb(t+n,n))>=0)return null
;for(var r=0,a=[],i=Math.floor(2*n*Math.log(t+1)/(3*Math.LN2))+1;r<t;){if(0===i--){for(var o=r,l=t;o<l;){
var s=Math.floor((o+l+1)/2);bnCmp(bnComb(s-1+n,n),e)<=0?o=s:l=s-1}a=bnComb((r=o)-1+n,n);break}
var u=0===r?[1]:bnDivSmall(bnMulSmall(a,r+n),r)[0];if(bnCmp(u,e)>0)break;a=u,r++}
return unrankComposition(bnSub(e,a),r,n)}function sequenceLengths(e){for(var n=[],t=[1];;){var r=bnByteLength(t)
;if(n.length&&r<=n[n.length-1]&&(r=n[n.length-1]+1),r>LE_MAX_PAYLOAD)return n;n.push(r),t=bnMul(t,e)}}function crc16(e){
for(var n=65535,t=0;t<e.length;t++){n^=e.charCodeAt(t)<<8;for(var r=0;r<8;r++)n=32768&n?65535&(n<<1^4129):n<<1&65535}
return n}function makeSet(e,n,t){return{id:e,name:n,labels:t,memo:{},lengths:{}}}var LE_BUILTIN={}
;function checkUserSet(e,n,t){(null===e||"object"!=typeof e||e instanceof Array)&&leFail("expected an object",n)
;var r=e.id,a=e.name,i=e.labels;"number"==typeof r&&Math.floor(r)===r||leFail("'id' must be an integer",n+".id"),
"string"!=typeof a&&leFail("'name' must be a string",n+".name"),
i instanceof Array||leFail("'labels' must be a list of strings",n+".labels"),
(r<0||r>LE_MAX_SET_ID)&&leFail(r+" is not a set id in 0.."+LE_MAX_SET_ID,n+".id"),
LE_NAME.test(a)||leFail(JSON.stringify(a)+" must match [A-Za-z0-9][A-Za-z0-9._-]*",n+".name"),
(i.length<2||i.length>LE_MAX_CLASSES)&&leFail(i.length+" classes; a set needs 2.."+LE_MAX_CLASSES,n+".labels")
;for(var o={},l=0;l<i.length;l++){var s=i[l]
;"string"==typeof s&&LE_NAME.test(s)||leFail("must match [A-Za-z0-9][A-Za-z0-9._-]*",n+".labels["+l+"]"),
s===LE_NO_FACE&&leFail("'none' is reserved for 'no face' and cannot be a class",n+".labels["+l+"]"),
o.hasOwnProperty(s)&&leFail("duplicate class name",n+".labels"),o[s]=!0}
for(var u in t)t.hasOwnProperty(u)&&t[u].name===a&&t[u].id!==r&&leFail("name "+JSON.stringify(a)+" is already id "+t[u].id,n+".name")
;var c=t[r]
;return!c||c.name===a&&c.labels.join("\n")===i.join("\n")||leFail("id "+r+" is already "+JSON.stringify(c.name),n+".id"),
makeSet(r,a,i.slice())}!function(){for(var e=0;e<LE_BUILTIN_SETS.length;e++){var n=LE_BUILTIN_SETS[e]
;LE_BUILTIN[n[0]]=makeSet(n[0],n[1],n[2])}}();var registryCache={key:null,sets:null};function registryOf(e){
var n=e&&void 0!==e.labelSets?e.labelSets:null,t="string"==typeof n?n:JSON.stringify(n)
;if(registryCache.key===t&&registryCache.sets)return registryCache.sets;var r,a,i={}
;for(r in LE_BUILTIN)LE_BUILTIN.hasOwnProperty(r)&&(i[r]=LE_BUILTIN[r]);for(a=0;a<USER_LABEL_SETS.length;a++){
var o=checkUserSet(USER_LABEL_SETS[a],"USER_LABEL_SETS["+a+"]",i);i[o.id]=o}if(null!==n){var l=n
;if("string"==typeof n)try{l=JSON.parse(n)}catch(e){leFail("not JSON: "+e.message,"variables.labelSets")}
for(null!==l&&"object"==typeof l&&l.label_sets instanceof Array||leFail("expected an object with a 'label_sets' list","variables.labelSets"),
a=0;a<l.label_sets.length;a++){var s=checkUserSet(l.label_sets[a],"label_sets["+a+"]",i);i[s.id]=s}}
return registryCache={key:t,sets:i},i}function recEmotion(e,n,t){var r={n:e+"emotion",vs:null===n?LE_NO_FACE:n}
;return null!==t&&(r.t=t),r}function recValue(e,n,t,r){var a={n:e};return null!==n&&(a.u=n),a.v=t,null!==r&&(a.t=r),a}
function pushReading(e,n,t,r,a){e.push(recEmotion(n,t,a)),null!==r&&e.push(recValue(n+"confidence","/",r,a))}
function exactLength(e,n,t){e.length<n&&leFail("payload truncated: expected "+n+" bytes, got "+e.length,t,0),
e.length>n&&leFail(e.length-n+" unexpected trailing bytes (a "+t+" is "+n+" bytes)",t,n)}function requireBelow(e,n,t){
bnCmp(e,n)>=0&&leFail("value "+bnToDecimal(e)+" is out of range (the field has "+bnToDecimal(n)+" values)",t,0)}
function countFromLength(e,n,t){for(var r=0;r<n.length;r++)if(n[r]===e.length)return r
;leFail(e.length+" bytes is not a valid length (valid: "+n.slice(0,8).join(", ")+", ...)",t,0)}function stateLabel(e,n){
var t=Math.floor(n/LE_STEPS);return t===e.labels.length?[null,null]:[e.labels[t],n%LE_STEPS/100]}
function readingLength(e){return e*LE_STEPS+1<=256?1:2}function decodeReading(e,n,t){var r=n.labels.length
;exactLength(e,readingLength(r),"reading");var a=1===e.length?e[0]:256*e[0]+e[1],i=Math.floor(a/LE_STEPS),o=a%LE_STEPS
;i<r?pushReading(t,"",n.labels[i],o/100,null):i===r&&0===o?pushReading(t,"",null,null,null):leFail("value "+a+" is out of range (the field has "+(r*LE_STEPS+1)+" values)","reading",0)
}function distributionStates(e){return bnComb(100+e-1,e-1)}function cachedLength(e,n,t){var r=e.lengths[n]
;return void 0===r&&(r=e.lengths[n]=t()),r}function distributionShares(e,n){
var t=n.labels.length,r=distributionStates(t);exactLength(e,cachedLength(n,"distribution",function(){
return bnByteLength(r)}),"distribution");var a=bnFromBytes(e,0,e.length);return requireBelow(a,r,"distribution"),
unrankShares(a,r,t)}function pushDistribution(e,n,t,r){for(var a=0,i=1;i<t.length;i++)t[i]>t[a]&&(a=i)
;pushReading(e,"",n.labels[a],t[a]/100,r)
;for(var o=0;o<t.length;o++)e.push(recValue("probability:"+n.labels[o],"/",t[o]/100,r))}function decodeFaces(e,n,t){
var r=n.labels.length*LE_STEPS,a=countFromLength(e,cachedLength(n,"faces",function(){
return sequenceLengths(bnFromNumber(r))}),"faces"),i=bnFromBytes(e,0,e.length)
;requireBelow(i,bnPow(bnFromNumber(r),a),"faces");for(var o=[],l=a-1;l>=0;l--){var s=bnDivSmall(i,r);o[l]=s[1],i=s[0]}
t.push(recValue("faces",null,a,null));for(var u=0;u<a;u++){var c=stateLabel(n,o[u])
;pushReading(t,"face:"+u+":",c[0],c[1],null)}}function decodeSummary(e,n,t){
e.length||leFail("payload truncated: expected 1 bytes, got 0","summary",0),
e.length>1&&0===e[0]&&leFail("leading zero byte (not the shortest encoding)","summary",0)
;var r=bnDivSmall(bnFromBytes(e,0,e.length),LE_STEPS),a=r[1],i=(r=bnDivSmall(r[0],LE_WINDOW_RADIX))[1],o=n.labels.length,l=unrankBounded(r[0],o+1,LE_SUMMARY_MAX)
;null===l&&leFail("counts exceed "+LE_SUMMARY_MAX+" readings","summary",0);for(var s=-1,u=0,c=0;c<=o;c++)u+=l[c],
c<o&&l[c]>0&&(s<0||l[c]>l[s])&&(s=c);s<0&&a&&leFail("mean confidence given but no class counted","summary",0),
e.length>LE_MAX_PAYLOAD&&leFail("needs "+e.length+" bytes, more than the 51-byte limit","summary",0),
pushReading(t,"",s<0?null:n.labels[s],s<0?null:a/100,null),t.push(recValue("window","s",i+1,null)),
t.push(recValue("readings",null,u,null));for(var h=0;h<o;h++)t.push(recValue("count:"+n.labels[h],null,l[h],null))
;t.push(recValue("count:"+LE_NO_FACE,null,l[o],null))}function vitalsLabelRadix(e){return e*LE_STEPS+2}
function vitalsLength(e){return bnByteLength(bnFromNumber(vitalsLabelRadix(e)*LE_SKIN_RADIX*LE_HEART_RADIX))}
function pushVitals(e,n,t,r){var a=t%LE_HEART_RADIX,i=(t=(t-a)/LE_HEART_RADIX)%LE_SKIN_RADIX,o=(t-i)/LE_SKIN_RADIX
;if(i||a||leFail("neither heart rate nor skin conductance present","vitals",0),o){var l=stateLabel(n,o-1)
;pushReading(e,"",l[0],l[1],r)}a&&e.push(recValue("heartRate","beat/min",a-1,r)),
i&&e.push(recValue("skinConductance","S",(i-1)/1e8,r))}function decodeVitals(e,n,t){var r=n.labels.length
;exactLength(e,vitalsLength(r),"vitals");for(var a=0,i=0;i<e.length;i++)a=256*a+e[i]
;a>=vitalsLabelRadix(r)*LE_SKIN_RADIX*LE_HEART_RADIX&&leFail("value "+a+" is out of range","vitals",0),
pushVitals(t,n,a,null)}var LE_STATUS_STATES=function(){
for(var e=[1],n=0;n<LE_STATUS_RADICES.length;n++)e=bnMulSmall(e,LE_STATUS_RADICES[n]);return e}()
;function decodeStatus(e,n,t,r){exactLength(e,16,"status");var a=bnFromBytes(e,0,e.length)
;requireBelow(a,LE_STATUS_STATES,"status");for(var i=[],o=LE_STATUS_RADICES.length-1;o>=0;o--){
var l=bnDivSmall(a,LE_STATUS_RADICES[o]);i[o]=l[1],a=l[0]}for(var s=i[11].toString(16);s.length<4;)s="0"+s
;t.push(recValue("protocolVersion",null,i[0],null)),t.push({n:"firmwareVersion",vs:i[1]+"."+i[2]+"."+i[3]}),
i[4]&&t.push(recValue("batteryLevel","%EL",i[4]-1,null)),t.push(recValue("uptime","s",60*i[5],null)),
t.push(recValue("droppedReadings",null,i[6],null)),t.push(recValue("windowLength","s",i[7]+1,null)),t.push({n:"mode",
vs:LE_MODES[i[8]]}),t.push(recValue("dailyBudget","s",i[9]+1,null)),t.push(recValue("labelSetId",null,i[10],null)),
t.push({n:"labelSetFingerprint",vs:s}),t.push(recValue("commandSeq",null,i[12],null)),t.push({n:"commandStatus",
vs:LE_COMMAND_STATUS[i[13]]});var u=n[i[10]]
;u?crc16(u.labels.join("\n"))!==i[11]&&r.push("label set id "+i[10]+": the device reports fingerprint "+s+", this decoder has "+u.name+" ("+crc16(u.labels.join("\n")).toString(16)+"): its labels may not match the device"):r.push("label set id "+i[10]+" is not declared here: its messages will not decode")
}function batchElementStates(e,n){
return 5===e?bnFromNumber(n*LE_STEPS+1):6===e?distributionStates(n):bnFromNumber(vitalsLabelRadix(n)*LE_SKIN_RADIX*LE_HEART_RADIX)
}function decodeBatch(e,n,t,r){
var a=n.labels.length,i=batchElementStates(t,a),o=bnMulSmall(i,LE_GAP_RADIX),l=countFromLength(e,cachedLength(n,"batch"+t,function(){
return sequenceLengths(o)}),"batch");0===l&&leFail("a batch needs at least one entry","batch",0)
;var s=bnFromBytes(e,0,e.length);requireBelow(s,bnPow(o,l),"batch");for(var u=[],c=[],h=l-1;h>=0;h--){
var b=bnDivmod(s,i);c[h]=b[1],b=bnDivSmall(b[0],LE_GAP_RADIX),u[h]=b[1],s=b[0]}for(var f=0,d=0;d<l;d++){
var m=(f+=u[d])?-f:null;if(5===t){var g=stateLabel(n,bnToNumber(c[d]));pushReading(r,"",g[0],g[1],m)}else if(6===t){
var p=c[d];requireBelow(p,i,"distribution"),pushDistribution(r,n,unrankShares(p,i,a),m)
}else pushVitals(r,n,bnToNumber(c[d]),m)}}function decodeCompact(e,n,t,r){var a=[]
;if(2===n)return decodeStatus(e,t,a,r),a
;("number"!=typeof n||Math.floor(n)!==n||n<16||n>207)&&leFail("port "+n+" carries no compact emotion message","fport")
;var i=Math.floor((n-16)/8),o=(n-16)%8,l=t[i]
;return l||leFail("port "+n+" is label set id "+i+", which this decoder does not know; declare it (labels file) rather than guess","fport"),
0===o?decodeReading(e,l,a):1===o?pushDistribution(a,l,distributionShares(e,l),null):2===o?decodeFaces(e,l,a):3===o?decodeSummary(e,l,a):4===o?decodeVitals(e,l,a):decodeBatch(e,l,o,a),
a}var CBOR_MAX_DEPTH=64,CBOR_INT_LIMIT=0x10000000000000000,SENML_LABELS={"-2":["bn","text"],"-3":["bt","number"],
"-4":["bu","text"],"-5":["bv","number"],"-6":["bs","number"],"-1":["bver","int"],0:["n","text"],1:["u","text"],
2:["v","number"],3:["vs","text"],4:["vb","bool"],8:["vd","bytes"],5:["s","number"],6:["t","number"],7:["ut","number"]
},SENML_ORDER=["bn","bt","bu","bv","bs","bver","n","u","v","vs","vb","vd","s","t","ut"],THINGSML_INDEX={
"-24":["temperature","Cel"],"-23":["humidity","%RH"],"-22":["latitude","lat"],"-21":["longitude","lon"],
"-20":["altitude","m"],"-19":["power","W"],"-18":["pressure","Pa"],"-17":["angle","rad"],"-16":["length","m"],
"-15":["breadth","m"],"-14":["height","m"],"-13":["weight","kg"],"-12":["thickness","m"],"-11":["distance","m"],
"-10":["area","m2"],"-9":["volume","m3"],"-8":["velocity","m/s"],"-7":["electricCurrent","A"],
"-6":["electricPotential","V"],"-5":["electricResistance","Ohm"],"-4":["illuminance","lx"],
"-3":["accelerationX","m/s2"],"-2":["accelerationY","m/s2"],"-1":["accelerationZ","m/s2"],0:["heading","rad"],
1:["COConcentration","ppm"],2:["CO2Concentration","ppm"],3:["sound","dB"],4:["frequency","Hz"],5:["batteryLevel","%EL"],
6:["batteryVoltage","V"],7:["radius","m"],8:["batteryLevelLow","/"],9:["compassX","T"],10:["compassY","T"],
11:["compassZ","T"],12:["readSwitch","/"],13:["presence",null],14:["counter",null]};function CborFloat(e){this.value=e}
function CborBytes(e){this.bytes=e}function CborMap(){this.keys=[],this.values=[]}function CborBigInt(e,n){this.value=e,
this.text=n}function cborError(e,n){leFail("invalid CBOR: "+e+(void 0===n?"":" at byte "+n))}function CborReader(e){
this.bytes=e,this.pos=0}function bnToDecimal(e){for(var n="",t=e;t.length;){var r=bnDivSmall(t,1e7),a=String(r[1])
;if((t=r[0]).length)for(;a.length<7;)a="0"+a;n=a+n}return n||"0"}function halfToNumber(e){var n,t=e>>10&31,r=1023&e
;return n=0===t?r*Math.pow(2,-24):31===t?r?NaN:1/0:(r+1024)*Math.pow(2,t-25),32768&e?-n:n}function singleToNumber(e,n){
var t,r=(e[n]<<24|e[n+1]<<16|e[n+2]<<8|e[n+3])>>>0,a=r>>>23&255,i=8388607&r
;return t=0===a?i*Math.pow(2,-149):255===a?i?NaN:1/0:(i+8388608)*Math.pow(2,a-150),r>>>31?-t:t}
function doubleToNumber(e,n){
var t,r=(e[n]<<24|e[n+1]<<16|e[n+2]<<8|e[n+3])>>>0,a=r>>>20&2047,i=4294967296*(1048575&r)+((e[n+4]<<24|e[n+5]<<16|e[n+6]<<8|e[n+7])>>>0)
;return t=0===a?i*Math.pow(2,-1074):2047===a?i?NaN:1/0:(i+4503599627370496)*Math.pow(2,-52)*Math.pow(2,a-1023),
r>>>31?-t:t}function utf8Decode(e,n,t){for(var r="",a=n;a<t;){var i,o,l,s=e[a];if(s<128)r+=String.fromCharCode(s),
a++;else{s>=194&&s<=223?(i=31&s,o=1,l=128):s>=224&&s<=239?(i=15&s,o=2,l=2048):s>=240&&s<=244?(i=7&s,o=3,
l=65536):cborError("text string is not UTF-8",a),a+o>=t&&cborError("text string is not UTF-8",a);for(var u=1;u<=o;u++){
var c=e[a+u];128!=(192&c)&&cborError("text string is not UTF-8",a),i=64*i+(63&c)}
(i<l||i>1114111||i>=55296&&i<=57343)&&cborError("text string is not UTF-8",a),i>=65536?(i-=65536,
r+=String.fromCharCode(55296+(i>>10),56320+(1023&i))):r+=String.fromCharCode(i),a+=o+1}}return r}
function mapKeyIdentity(e){
return"number"==typeof e?"i"+e:e instanceof CborBigInt?"i"+e.text:"string"==typeof e?"s"+e:null}
function cborTypeName(e){
return null===e?"null":"boolean"==typeof e?"boolean":"number"==typeof e||e instanceof CborFloat||e instanceof CborBigInt?"number":"string"==typeof e?"string":e instanceof CborBytes?"byte string":e instanceof CborMap?"object":"array"
}function isCborInt(e){return"number"==typeof e||e instanceof CborBigInt}function base64url(e){
for(var n="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",t="",r=0;r<e.length;r+=3){
var a=65536*e[r]+256*(e[r+1]||0)+(e[r+2]||0);t+=n.charAt(a>>18)+n.charAt(a>>12&63),r+1<e.length&&(t+=n.charAt(a>>6&63)),
r+2<e.length&&(t+=n.charAt(63&a))}return t}function setOwn(e,n,t){Object.defineProperty(e,n,{value:t,enumerable:!0,
writable:!0,configurable:!0})}function cborToJson(e){if(e instanceof CborFloat||e instanceof CborBigInt)return e.value
;if(e instanceof CborBytes)return base64url(e.bytes);if(e instanceof CborMap){for(var n={},t=0;t<e.keys.length;t++){
var r=e.keys[t];setOwn(n,r instanceof CborBigInt?r.text:String(r),cborToJson(e.values[t]))}return n}
if(e instanceof Array){for(var a=[],i=0;i<e.length;i++)a.push(cborToJson(e[i]));return a}return e}
function checkKind(e,n,t){
("text"===e?"string"==typeof n:"number"===e?"number"==typeof n||n instanceof CborFloat||n instanceof CborBigInt:"int"===e?isCborInt(n):"bool"===e?"boolean"==typeof n:n instanceof CborBytes)||leFail("expected a"+("int"===e?"n integer":" "+e)+", got "+cborTypeName(n),t)
}function thingsmlRecord(e,n){n instanceof CborMap||leFail("expected a map, got "+cborTypeName(n),"record "+e)
;for(var t={},r=[],a=[],i=[],o=0;o<n.keys.length;o++){
var l=n.keys[o],s=n.values[o],u="record "+e+" field "+JSON.stringify(String(l instanceof CborBigInt?l.text:l))
;if(23===l||"i_"===l)i.push(s);else if(isCborInt(l)){var c="number"==typeof l?SENML_LABELS[String(l)]:void 0
;c||leFail("unknown integer label",u),checkKind(c[1],s,u),t[c[0]]="bytes"===c[1]?base64url(s.bytes):cborToJson(s)}else{
for(var h=0;h<SENML_ORDER.length;h++)SENML_ORDER[h]===l&&leFail("label must be the integer label, not text",u)
;"_"===l.charAt(l.length-1)&&leFail("must-understand field (RFC 8428 section 4.4) is not supported",u),r.push(l),
a.push(cborToJson(s))}}if(i.length>1&&leFail("measurement index given twice (23 and 'i_')","record "+e+" field 'i_'"),
i.length){var b=i[0]
;"number"!=typeof b&&leFail("expected an integer measurement index, got "+cborTypeName(b),"record "+e+" field 'i_'")
;var f=THINGSML_INDEX[String(b)];f||leFail("unknown measurement index "+b,"record "+e+" field 'i_'"),
void 0!==t.n&&leFail("record has both a name and a measurement index","record "+e+" field 'n'"),t.n=f[0],
void 0===t.u&&null!==f[1]&&(t.u=f[1])}
for(var d={},m=0;m<SENML_ORDER.length;m++)void 0!==t[SENML_ORDER[m]]&&(d[SENML_ORDER[m]]=t[SENML_ORDER[m]])
;for(var g=0;g<r.length;g++)Object.prototype.hasOwnProperty.call(d,r[g])||setOwn(d,r[g],a[g]);return d}
function decodeThingsml(e){var n=new CborReader(e),t=n.item(0)
;n.pos!==e.length&&leFail(e.length-n.pos+" bytes of trailing data after the CBOR item",null,n.pos),
t instanceof Array||leFail("expected a CBOR array of records, got "+cborTypeName(t))
;for(var r=[],a=0;a<t.length;a++)r.push(thingsmlRecord(a,t[a]));return r}CborReader.prototype.need=function(e){
this.pos+e>this.bytes.length&&cborError("premature end of stream",this.pos)},CborReader.prototype.uint=function(e){
this.need(e);for(var n=0,t=0;t<e;t++)n=256*n+this.bytes[this.pos+t];return this.pos+=e,n},
CborReader.prototype.argument=function(e){if(e<24)return[e,null];if(24===e)return[this.uint(1),null]
;if(25===e)return[this.uint(2),null];if(26===e)return[this.uint(4),null];if(27===e){this.need(8)
;var n=bnFromBytes(this.bytes,this.pos,this.pos+8)
;return this.pos+=8,bnBitLength(n)<=53?[bnToNumber(n),null]:[bnToNumber(n),bnToDecimal(n)]}
cborError("invalid additional information "+e,this.pos-1)},CborReader.prototype.chunk=function(e,n){
var t=this.argument(n)[0];this.need(t);var r=this.pos
;return this.pos+=t,2===e?this.bytes.slice(r,r+t):utf8Decode(this.bytes,r,r+t)},CborReader.prototype.isBreak=function(){
return this.need(1),255===this.bytes[this.pos]&&(this.pos++,!0)},CborReader.prototype.item=function(e){this.need(1)
;var n,t,r=this.pos,a=this.bytes[this.pos++],i=a>>5,o=31&a;if(0===i||1===i)return n=this.argument(o),
0===i?null===n[1]?n[0]:new CborBigInt(n[0],n[1]):null===n[1]?-1-n[0]:(n[0]>=CBOR_INT_LIMIT&&"18446744073709551615"===n[1]&&leFail("integer out of range (magnitude must be below 2**64)"),
new CborBigInt(-1-n[0],"-"+bnToDecimal(bnAdd(bnFromBytes(this.bytes,this.pos-8,this.pos),[1]))));if(2===i||3===i){
if(31!==o){var l=this.chunk(i,o);return 2===i?new CborBytes(l):l}for(var s=2===i?[]:"";!this.isBreak();){
var u=this.bytes[this.pos++];u>>5===i&&31&~u||cborError("non-matching chunk in an indefinite length string",this.pos-1)
;var c=this.chunk(i,31&u);s=s.concat(c)}return 2===i?new CborBytes(s):s}if(4===i||5===i){
e>=CBOR_MAX_DEPTH&&cborError("maximum container nesting depth (64) exceeded",r);var h=31===o,b=h?-1:this.argument(o)[0]
;if(4===i){for(var f=[],d=0;h?!this.isBreak():d<b;d++)f.push(this.item(e+1));return f}
for(var m=new CborMap,g={},p=0;h?!this.isBreak():p<b;p++){var v=this.item(e+1),_=mapKeyIdentity(v)
;null===_&&leFail("map key must be an integer or text label","record"),
g.hasOwnProperty(_)&&cborError("duplicate map key",r),g[_]=!0,m.keys.push(v),m.values.push(this.item(e+1))}return m}
return 6===i&&leFail("invalid CBOR: CBOR tags are not allowed in SenML"),
20===o||21===o?21===o:22===o?null:(25===o?t=halfToNumber(this.uint(2)):26===o?(this.need(4),
t=singleToNumber(this.bytes,this.pos),this.pos+=4):27===o?(this.need(8),t=doubleToNumber(this.bytes,this.pos),
this.pos+=8):31===o?cborError("break outside an indefinite length item",r):(24===o?this.uint(1):o>=28&&cborError("invalid additional information "+o,r),
leFail("unsupported value (undefined or a simple value)")),
t==t&&t!==1/0&&t!==-1/0||leFail("expected a finite number, got "+t),new CborFloat(t))};var LE_OPS={1:["set_window",2],
2:["set_mode",1],3:["set_daily_budget",2],4:["set_label_set",4],5:["send_status",0],6:["set_status_interval",2]}
;function checkInt(e,n,t,r){
return("number"!=typeof e||Math.floor(e)!==e||e<n||e>t)&&leFail(JSON.stringify(e)+" is not an integer in "+n+".."+t,r),e
}function labelSetWarning(e,n){var t=LE_BUILTIN[e.set_id];if(t){var r=crc16(t.labels.join("\n"))
;if(t.labels.length!==e.classes||r!==e.fingerprint)return n+": the relay will reject this: built-in set "+e.set_id+" ("+t.name+") has "+t.labels.length+" classes and fingerprint "+r
}else if(e.classes>LE_RELAY_MAX_CLASSES)return n+": the relay will reject this: it keeps sums for at most "+LE_RELAY_MAX_CLASSES+" classes"
;return null}function decodeCommands(e,n){e.length||leFail("payload truncated: expected 1 bytes, got 0","seq",0)
;for(var t=[],r=1;r<e.length;){var a=LE_OPS[e[r]];a||leFail("unknown opcode "+e[r],"opcode",r);var i=a[1]
;r+1+i>e.length&&leFail("payload truncated: expected "+i+" bytes, got "+(e.length-r-1),a[0],r+1)
;var o=r+1,l=2===i?256*e[o]+e[o+1]:0,s={op:a[0]}
;if("set_window"===a[0])s.window_s=l+1;else if("set_mode"===a[0])e[o]>3&&leFail(e[o]+" is not a Mode","mode",o),
s.mode=LE_MODES[e[o]];else if("set_daily_budget"===a[0])s.budget_s=checkAt(l+1,1,1024,"budget_s",o);else if("set_label_set"===a[0]){
s.set_id=checkAt(e[o],0,LE_MAX_SET_ID,"set_id",o),s.classes=checkAt(e[o+1],2,LE_MAX_CLASSES,"classes",o),
s.fingerprint=256*e[o+2]+e[o+3];var u=labelSetWarning(s,"commands["+t.length+"]");u&&n.push(u)
}else"set_status_interval"===a[0]&&(s.interval_min=checkAt(l,1,65535,"interval_min",o));t.push(s),r+=1+i}return{
seq:e[0],commands:t}}function checkAt(e,n,t,r,a){return(e<n||e>t)&&leFail(e+" is not an integer in "+n+".."+t,r,a),e}
function encodeCommands(e,n){null!==e&&"object"==typeof e||leFail("expected an object {seq, commands}","data")
;var t=[checkInt(e.seq,0,255,"seq")],r=void 0===e.commands?[]:e.commands
;r instanceof Array||leFail("expected a list of commands","commands");for(var a=0;a<r.length;a++){
var i=r[a],o="commands["+a+"]";if(null!==i&&"object"==typeof i||leFail("expected an object with an op",o),
"set_window"===i.op){var l=checkInt(i.window_s,1,65536,o+".window_s")-1;t.push(1,l>>8,255&l)}else if("set_mode"===i.op){
var s="string"==typeof i.mode?LE_MODES.indexOf(i.mode):-1
;s<0&&leFail(JSON.stringify(i.mode)+" is not a mode ("+LE_MODES.join(", ")+")",o+".mode"),t.push(2,s)
}else if("set_daily_budget"===i.op){var u=checkInt(i.budget_s,1,1024,o+".budget_s")-1;t.push(3,u>>8,255&u)
}else if("set_label_set"===i.op){var c={op:i.op,set_id:checkInt(i.set_id,0,LE_MAX_SET_ID,o+".set_id"),
classes:checkInt(i.classes,2,LE_MAX_CLASSES,o+".classes"),fingerprint:checkInt(i.fingerprint,0,65535,o+".fingerprint")
},h=labelSetWarning(c,o);h&&n.push(h),t.push(4,c.set_id,c.classes,c.fingerprint>>8,255&c.fingerprint)
}else if("send_status"===i.op)t.push(5);else if("set_status_interval"===i.op){
var b=checkInt(i.interval_min,1,65535,o+".interval_min");t.push(6,b>>8,255&b)
}else leFail("unknown op "+JSON.stringify(i.op)+" (set_window, set_mode, set_daily_budget, set_label_set, send_status, set_status_interval)",o+".op")
}return t.length>LE_MAX_PAYLOAD&&leFail("needs "+t.length+" bytes, more than the 51-byte limit","commands"),t}
function inputBytes(e){var n=e&&e.bytes
;n&&"number"==typeof n.length||leFail("input.bytes must be an array of byte values","bytes")
;for(var t=[],r=0;r<n.length;r++){var a=n[r]
;("number"!=typeof a||Math.floor(a)!==a||a<0||a>255)&&leFail("input.bytes["+r+"] is not a byte value","bytes"),t.push(a)
}return t}function outcome(e){var n=[];try{var t=e(n);return n.length&&(t.warnings=n),t}catch(e){
return e instanceof LeError?{errors:[e.message]}:{errors:["internal error: "+(e&&e.message?e.message:String(e))]}}}
function decodeUplink(e){return outcome(function(n){var t=inputBytes(e),r=e.fPort;return{data:{
records:1===r?decodeThingsml(t):decodeCompact(t,r,registryOf(e.variables),n)}}})}function encodeDownlink(e){
return outcome(function(n){return{bytes:encodeCommands(e?e.data:void 0,n),fPort:LE_COMMAND_PORT}})}
function decodeDownlink(e){return outcome(function(n){var t=inputBytes(e)
;return e.fPort!==LE_COMMAND_PORT&&leFail("port "+e.fPort+" carries no command; commands go on port 3","fport"),{
data:decodeCommands(t,n)}})}"undefined"!=typeof module&&module.exports&&(module.exports={decodeUplink:decodeUplink,
encodeDownlink:encodeDownlink,decodeDownlink:decodeDownlink});
